"""Data wiring: digit sources, own sequence arrays, the per-rank training dataset, validation,
evaluation and batching.

Epoch ``e`` of a run on G devices with batch B and ``steps_per_epoch`` steps is a random-access
source of ``steps_per_epoch * G * B`` sequences; at step s, rank r takes the B global indices
``(s*G + r)*B + b`` for b in [0, B). This makes ranks disjoint, and a run resumed at step s
sees exactly the batches an uninterrupted run would have seen. Each training batch is one
item of the dataset, read whole (:class:`RankBatches`). The epoch's source is

* Moving MNIST (``dataset`` synthetic, mnist): the MovingMNIST generator seeded with (seed, e);
* own sequences (``dataset sequences``, :mod:`src.data.sequences`): the training split's
  windows in an order shuffled from (seed, e) (:class:`ShuffledWindows`): global index g is
  window ``perm[g % n]`` of pass ``g // n`` over the n windows, each pass its own permutation,
  so an epoch may be shorter or longer than one pass and never repeats a window within a pass.

:class:`TrainingData` builds what train.py reads for either kind; with own sequences it also
returns the config with the frame shape (channels, frame_height, frame_width) and dtype read
from the data, and the normalisation and split record the checkpoint stores.

MindSpore is imported only by :func:`build_rank_dataset`; everything else is plain numpy.
"""
import os

import numpy as np

from src.data.archive import unpacked_data_path
from src.data.digits import synthetic_digits
from src.data.idx import read_idx_images
from src.data.moving_mnist import MovingMNIST
from src.errors import ConfigError, DataError

COLUMNS = ("inputs", "targets")
MNIST_TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")
MNIST_VAL_COUNT = 5000  # the last 5000 training images are held out for validation
SYNTHETIC_SPLITS = {"train": dict(count=2000, seed=0), "val": dict(count=500, seed=1)}
_cache = {}  # (path, size, mtime) -> images: train and val splits read the file once


def _mnist_file(data_path):
    """The MNIST training-image file under ``data_path`` (a directory, or a file inside it)."""
    folder = os.path.dirname(data_path) or "." if os.path.isfile(data_path) else data_path
    for name in MNIST_TRAIN_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise DataError(f"dataset mnist: {MNIST_TRAIN_FILES[0]} not found in data_path {folder}; run "
                    f"`bash download.sh {folder}` (or copy the file there), or use --dataset synthetic")


def _read_cached(path):
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _cache:
        _cache.clear()
        _cache[key] = read_idx_images(path)
    return _cache[key]


def load_digits(cfg, split):
    """Digit images (N, 28, 28) uint8 for ``split`` "train" or "val".

    synthetic: 2000 embedded glyphs for train, 500 other glyph instances for val.
    mnist: the MNIST training images of ``cfg.data_path``, all but the last 5000 for train and
    the last 5000 for val. A missing file is an error, never a silent switch to synthetic.
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if cfg.dataset == "synthetic":
        return synthetic_digits(**SYNTHETIC_SPLITS[split])
    path = _mnist_file(unpacked_data_path(cfg, [MNIST_TRAIN_FILES]))  # a .zip is unpacked once
    images = _read_cached(path)  # (N, rows, cols)
    if images.shape[1] != images.shape[2] or images.shape[1] > cfg.image_size:
        raise DataError(f"{path}: images are {images.shape[1]}x{images.shape[2]}, expected square digits no larger "
                        f"than image_size {cfg.image_size} (MNIST digits are 28x28)")
    if len(images) <= MNIST_VAL_COUNT:
        raise DataError(f"{path}: only {len(images)} images; need more than {MNIST_VAL_COUNT} (the last "
                        f"{MNIST_VAL_COUNT} are the validation split); re-run `bash download.sh DATA_DIR`")
    return images[:-MNIST_VAL_COUNT] if split == "train" else images[-MNIST_VAL_COUNT:]


def global_index(step, rank, group_size, batch_size, slot):
    """Index, within the epoch's source, of sequence ``slot`` of ``rank``'s batch at ``step``."""
    return (step * group_size + rank) * batch_size + slot


def train_source(cfg, digits, epoch, group_size=1):
    """The whole epoch (all ranks) as one MovingMNIST of steps_per_epoch * G * B sequences."""
    return MovingMNIST(digits, cfg.steps_per_epoch * group_size * cfg.batch_size, cfg.num_digits_train,
                       input_frames=cfg.input_frames, output_frames=cfg.output_frames,
                       image_size=cfg.image_size, seed=cfg.seed, epoch=epoch)


class RankBatches:
    """Random-access source whose item ``j`` is ``rank``'s whole batch of step ``start_step + j``.

    Each item is built with one ``read_batch`` call, so a dataset over it needs no per-sequence
    Python work and no ``.batch()``.
    """

    def __init__(self, source, rank, group_size, batch_size, start_step, steps):
        if not 0 <= rank < group_size:
            raise ValueError(f"rank {rank} outside [0, {group_size})")
        if not 0 <= start_step < steps:
            raise ValueError(f"start_step {start_step} outside [0, {steps})")
        self.source, self.rank, self.group_size = source, rank, group_size
        self.batch_size, self.start_step, self.steps = batch_size, start_step, steps

    def __len__(self):
        return self.steps - self.start_step

    def source_indices(self, j):
        """Indices within the epoch's source of the sequences of item ``j``: (B,) int64."""
        slots = np.arange(self.batch_size, dtype=np.int64)
        return global_index(self.start_step + int(j), self.rank, self.group_size, self.batch_size, slots)

    def __getitem__(self, j):
        if not 0 <= j < len(self):
            raise IndexError(f"batch index {j} out of range [0, {len(self)})")
        return read_batch(self.source, self.source_indices(j))


_lowered_workers_noted = set()


def usable_cores():
    """CPU cores this process may run on (its affinity mask; a container may allow fewer than the host has)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def workers_for_host(requested):
    """``num_workers`` lowered to the usable cores, as the model zoo's ``min(num_workers, cpu_count)``:
    MindSpore refuses more parallel workers than cores with a traceback, and the shipped
    Ascend/GPU recipes ask for 8. Says so once per process."""
    cores = usable_cores()
    if requested <= cores:
        return requested
    if requested not in _lowered_workers_noted:
        _lowered_workers_noted.add(requested)
        print(f"note: num_workers {requested} lowered to {cores}, the CPU cores usable on this host", flush=True)
    return cores


def build_rank_dataset(cfg, source, rank=0, group_size=1, start_step=0):
    """MindSpore dataset of rank ``rank``'s batches of an epoch's ``source``, from ``start_step``.

    Columns ("inputs", "targets"), each (B, T, C, H, W) float32; steps_per_epoch - start_step
    batches, each read whole by one worker. ``cfg.worker_type`` picks threads (the
    default: little start-up cost) or processes (no contention on Python's interpreter lock);
    bench/data_throughput.py measures both.
    """
    import mindspore.dataset as ds  # pylint: disable=import-outside-toplevel

    batches = RankBatches(source, rank, group_size, cfg.batch_size, start_step, cfg.steps_per_epoch)
    return ds.GeneratorDataset(batches, column_names=list(COLUMNS), shuffle=False,
                               num_parallel_workers=workers_for_host(cfg.num_workers),
                               python_multiprocessing=cfg.worker_type == "process")


def validation_source(cfg, digits):
    """The fixed validation set: cfg.val_sequences sequences of cfg.num_digits_val digits, seeded by val_seed."""
    return MovingMNIST(digits, cfg.val_sequences, cfg.num_digits_val, input_frames=cfg.input_frames,
                       output_frames=cfg.output_frames, image_size=cfg.image_size, seed=cfg.val_seed, epoch=0)


def generated_test_source(cfg, digits, count):
    """The generated evaluation set: ``count`` sequences of cfg.num_digits_val digits seeded by test_seed.

    The config refuses test_seed == val_seed (and == seed), so these sequences come from other
    random streams than the validation (and training) sequences, even on the same digits.
    """
    return MovingMNIST(digits, count, cfg.num_digits_val, input_frames=cfg.input_frames,
                       output_frames=cfg.output_frames, image_size=cfg.image_size, seed=cfg.test_seed, epoch=0)


def read_batch(source, indices):
    """Sequences ``indices`` of a random-access source, stacked: ``(inputs (b, T_in, C, H, W),
    targets (b, T_out, C, H, W) or None)``.

    A source with a ``batch(indices)`` method (the generator) builds the whole batch at once; any
    other (``source[i] -> (inputs, targets)``, targets None for sources without them) is read item
    by item and stacked.
    """
    build = getattr(source, "batch", None)
    if callable(build):
        return build(indices)
    items = [source[int(i)] for i in indices]
    targets = None if items[0][1] is None else np.stack([y for _, y in items])
    return np.stack([x for x, _ in items]), targets


def iterate_batches(source, batch_size, limit=0):
    """The one batcher: yield ``(first index, inputs, targets)`` numpy batches in order.

    ``limit`` > 0 stops after that many sequences. The last batch may be smaller than batch_size.
    """
    total = len(source) if limit <= 0 else min(limit, len(source))
    for start in range(0, total, batch_size):
        yield (start, *read_batch(source, np.arange(start, min(start + batch_size, total))))


# ---------------------------------------------------------------- own sequence arrays

def sequence_normalization(cfg):
    """The normalisation a config fixes, or None while its dtype is still to be read from the data.

    A trained model's config holds ``data_dtype`` (train.py stores it), so data evaluated or
    predicted with it are scaled exactly as the training data were."""
    from src.data.sequences import make_normalization

    if not cfg.data_dtype:
        return None
    return make_normalization(cfg.data_dtype, cfg.data_scale, cfg.data_min, cfg.data_max)


def _split_fractions(cfg):
    return (1.0 - cfg.val_fraction - cfg.test_fraction, cfg.val_fraction, cfg.test_fraction)


def _check_local(path):
    from src.data.archive import is_remote_url

    if is_remote_url(path):
        raise DataError(f"data_path {path} is a remote URL; copy the sequence files to a local folder and pass that "
                        "folder (train.py and eval.py copy remote data in on ModelArts)")


def open_sequence_splits(cfg):
    """The train/val/test splits of ``cfg.data_path`` (src.data.sequences.open_sequences)."""
    from src.data.sequences import open_sequences

    _check_local(cfg.data_path)
    return open_sequences(cfg.data_path, cfg.data_layout, cfg.input_frames, cfg.output_frames, npz_key=cfg.npz_key,
                          window_stride=cfg.window_stride, split=_split_fractions(cfg), split_seed=cfg.split_seed,
                          scale=cfg.data_scale, data_min=cfg.data_min, data_max=cfg.data_max,
                          normalization=sequence_normalization(cfg))


def _shape_text(shape):
    return "x".join(str(v) for v in shape)


def config_for_frames(cfg, shape, dtype, where, expected_from="the config (channels, frame_height, frame_width)"):
    """``cfg`` with channels, frame_height, frame_width and data_dtype set from the data.

    ``shape`` (C, H, W) and ``dtype`` are the data's; ``where`` names them in messages. A value
    ``cfg`` already fixes (non-zero) must agree (``expected_from`` says where it came from, e.g.
    a checkpoint); the frames must fit the architecture (check_tileable)."""
    from src.data.sequences import check_tileable

    given = (cfg.channels, cfg.frame_height, cfg.frame_width)
    if any(g and g != s for g, s in zip(given, shape)):
        wanted = _shape_text(g or "any" for g in given)
        raise DataError(f"{where}: frames are {_shape_text(shape)} (C x H x W) but {expected_from} expects {wanted}; "
                        "use data of that shape, or a model/config made for this data")
    try:
        check_tileable(shape[1], shape[2], cfg.arch, cfg.patch_size)
    except DataError as err:
        raise DataError(f"{where}: {err}") from None
    return cfg.replace(channels=int(shape[0]), frame_height=int(shape[1]), frame_width=int(shape[2]),
                       data_dtype=cfg.data_dtype or dtype)


class WindowSubset:
    """Some windows of a WindowSource, in the given order: ``subset[i]`` is ``source[indices[i]]``;
    the source's frame attributes are kept."""

    def __init__(self, source, indices):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        for name in ("channels", "height", "width", "normalization", "file", "path", "input_frames", "output_frames"):
            setattr(self, name, getattr(source, name, None))

    def __len__(self):
        return len(self.indices)

    def batch(self, indices):
        return read_batch(self.source, self.indices[np.asarray(indices, dtype=np.int64)])

    def __getitem__(self, index):
        if not 0 <= int(index) < len(self):
            raise IndexError(f"index {index} out of range [0, {len(self)})")
        return self.source[int(self.indices[int(index)])]


def evenly_spaced_windows(source, count):
    """At most ``count`` windows of ``source``, evenly spread over it (all of them when count >= len)."""
    total = len(source)
    if count <= 0 or count >= total:
        return source
    return WindowSubset(source, np.linspace(0, total - 1, count).round().astype(np.int64))


class ShuffledWindows:
    """One training epoch over the windows of a split: ``length`` items, item g is window
    ``perm_k[g % n]`` with k = g // n and perm_k = default_rng((seed, epoch, k)).permutation(n)."""

    def __init__(self, windows, length, seed, epoch):
        self.windows = windows
        self.length = int(length)
        self.seed, self.epoch = int(seed), int(epoch)
        self._orders = {}  # pass k -> permutation of the n windows

    def __len__(self):
        return self.length

    def _order(self, k):
        if k not in self._orders:
            self._orders[k] = np.random.default_rng((self.seed, self.epoch, int(k))).permutation(len(self.windows))
        return self._orders[k]

    def window_indices(self, indices):
        """Window of the split behind each epoch index: (B,) int64."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.length):
            raise IndexError(f"epoch index out of range [0, {self.length})")
        passes, slots = np.divmod(idx, len(self.windows))
        return np.array([self._order(k)[s] for k, s in zip(passes, slots)], dtype=np.int64)

    def batch(self, indices):
        return read_batch(self.windows, self.window_indices(indices))

    def __getitem__(self, index):
        return self.windows[int(self.window_indices([index])[0])]


class TrainingData:
    """What training reads, for every dataset: ``epoch_source(epoch, group_size)``, ``validation``
    (a source or None), ``cfg`` (the given config; with own sequences, the frame shape and dtype
    read from the data filled in), ``record`` (JSON-able, for the checkpoint) and ``describe()``.

    The data are opened and checked here, before MindSpore starts or anything is written."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.splits = None
        if cfg.dataset == "sequences":
            self._open_sequences(cfg)
        else:
            self.train_digits = load_digits(cfg, "train")
            val_digits = load_digits(cfg, "val") if cfg.val_sequences > 0 else None
            self.validation = validation_source(cfg, val_digits) if val_digits is not None else None
            self.record = {"dataset": cfg.dataset}

    def _open_sequences(self, cfg):
        splits = open_sequence_splits(cfg)
        self.splits = splits
        self.cfg = config_for_frames(cfg, (splits.channels, splits.height, splits.width), splits.train.file.dtype,
                                     cfg.data_path)
        self.validation = evenly_spaced_windows(splits.val, cfg.val_sequences) if cfg.val_sequences > 0 else None
        self.record = {"dataset": "sequences", "frame_shape": [splits.channels, splits.height, splits.width],
                       "normalization": splits.normalization.to_dict(), "split": splits.split_record,
                       "windows": {name: len(splits[name]) for name in ("train", "val", "test")}}

    def epoch_source(self, epoch, group_size=1):
        """The whole epoch (all ranks): steps_per_epoch * G * B sequences."""
        if self.splits is None:
            return train_source(self.cfg, self.train_digits, epoch, group_size)
        length = self.cfg.steps_per_epoch * group_size * self.cfg.batch_size
        return ShuffledWindows(self.splits.train, length, self.cfg.seed, epoch)

    def describe(self, group_size=1):
        cfg = self.cfg
        per_epoch = cfg.steps_per_epoch * cfg.batch_size * group_size
        per_step = f"({cfg.batch_size} per step per device x {group_size} device(s))"
        if self.splits is None:
            return (f"data: {cfg.dataset} digits, {cfg.num_digits_train} per training sequence, {per_epoch} sequences "
                    f"per epoch {per_step}")
        train = self.splits.train
        val = "no validation" if self.validation is None else f"validation on {len(self.validation)} of " \
            f"{len(self.splits.val)} val windows"
        norm = self.splits.normalization
        return (f"data: {cfg.data_path}: frames {cfg.channels}x{cfg.frame_height}x{cfg.frame_width} (C x H x W) "
                f"{train.file.dtype}, {norm.scale} [{norm.data_min:g}, {norm.data_max:g}] -> [0, 1]; "
                f"{len(train)} training windows of {cfg.input_frames}+{cfg.output_frames} frames "
                f"({len(train.sequence_indices)} sequences); {per_epoch} windows per epoch {per_step} = "
                f"{per_epoch / len(train):.2f} passes; {val}")


def _split_file_of(directory, split):
    """The <split>.npy / <split>.npz (split: test or val) of a train/val/test directory."""
    found = [os.path.join(directory, f"{split}{ext}") for ext in (".npy", ".npz")
             if os.path.isfile(os.path.join(directory, f"{split}{ext}"))]
    if len(found) != 1:
        what = f"both {split}.npy and {split}.npz" if found else f"no {split}.npy or {split}.npz"
        raise DataError(f"data_path {directory} holds {what}; eval.py scores the {split} file of a directory with "
                        f"eval_split {split} (keep one), or point data_path at one file")
    return found[0]


def evaluation_windows(cfg):
    """(source, description) of the windows eval.py scores with dataset sequences.

    ``eval_split`` test (or val): a file is split as training splits it (val_fraction,
    test_fraction, split_seed) and its test (val) split is scored; a directory's test (val) file
    is scored whole. ``all``: every window of the file. Model choices (recipes, checkpoints)
    are made on val, so that test stays held out. The first ``num_sequences`` windows only when > 0. The source
    keeps ``channels``, ``height``, ``width``, ``dtype`` and ``normalization`` of the data."""
    from src.data.sequences import open_sequence_file

    path = cfg.data_path
    _check_local(path)
    if os.path.isdir(path) or cfg.eval_split == "all":
        if os.path.isdir(path) and cfg.eval_split == "all":
            raise ConfigError(f"eval_split all scores one file, but data_path {path} is a directory; point it at a "
                              "file, or use eval_split test (the directory's test file)")
        file_path = _split_file_of(path, cfg.eval_split) if os.path.isdir(path) else path
        source = open_sequence_file(file_path, cfg.data_layout, cfg.input_frames, cfg.output_frames,
                                    npz_key=cfg.npz_key, window_stride=cfg.window_stride, scale=cfg.data_scale,
                                    data_min=cfg.data_min, data_max=cfg.data_max,
                                    normalization=sequence_normalization(cfg))
        what = f"{f'the {cfg.eval_split} file' if os.path.isdir(path) else 'every window'} of {file_path}"
    else:
        source = getattr(open_sequence_splits(cfg), cfg.eval_split)
        fraction = cfg.test_fraction if cfg.eval_split == "test" else cfg.val_fraction
        what = (f"the {cfg.eval_split} split of {path} ({len(source.sequence_indices)} sequences; split_seed "
                f"{cfg.split_seed}, {cfg.eval_split}_fraction {fraction:g})")
    described = f"{what}: {len(source)} windows of {cfg.input_frames}+{cfg.output_frames} frames"
    if cfg.num_sequences:
        count = min(cfg.num_sequences, len(source))
        described += f", the first {count} scored"
        source = WindowSubset(source, np.arange(count))
    return source, described


def prediction_source(cfg, path):
    """The sequences of a user's file to predict from, read as training read its data (data_layout,
    npz_key, the stored normalisation): src.data.sequences.open_input_file."""
    from src.data.sequences import open_input_file

    _check_local(path)
    return open_input_file(path, cfg.data_layout, cfg.input_frames, cfg.output_frames, npz_key=cfg.npz_key,
                           window_stride=cfg.window_stride, scale=cfg.data_scale, data_min=cfg.data_min,
                           data_max=cfg.data_max, normalization=sequence_normalization(cfg))
