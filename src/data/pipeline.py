"""Data wiring: digit sources, own sequences, per-rank training batches, validation and evaluation.

Rank r's batch at step s holds indices ``(s*G + r)*B + b`` of the epoch's source (Moving MNIST seeded with
(seed, e), or own windows shuffled per pass): ranks are disjoint and a resumed run sees the same batches.
MindSpore is imported only by :func:`build_rank_dataset`.
"""
import os

import numpy as np

from src.config import nodata_values
from src.data.archive import is_remote_url, unpacked_data_path
from src.data.digits import synthetic_digits
from src.data.idx import read_idx_images
from src.data.moving_mnist import MovingMNIST
from src.data.sequences import (check_tileable, checked_indices, fill_no_data, make_normalization, open_input_file,
                                open_sequence_file, open_sequences, split_file_paths)
from src.data.split_record import check_split, every_window_statement, file_fingerprint
from src.errors import ConfigError, DataError

COLUMNS = ("inputs", "targets")
MNIST_TRAIN_FILES = ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")
MNIST_VAL_COUNT = 5000  # the last 5000 training images are held out for validation
SYNTHETIC_SPLITS = {"train": dict(count=2000, seed=0), "val": dict(count=500, seed=1)}
_cache = {}  # (path, size, mtime) -> images: train and val splits read the file once


def _mnist_file(data_path):  # data_path: a directory, or a file inside it
    folder = os.path.dirname(data_path) or "." if os.path.isfile(data_path) else data_path
    for name in MNIST_TRAIN_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    raise DataError(f"dataset mnist: {MNIST_TRAIN_FILES[0]} not found in data_path {folder}; run "
                    f"`bash download.sh {folder}` (or copy the file there), or use --dataset synthetic")


def load_digits(cfg, split):
    """(N, 28, 28) uint8 digits of ``split`` train/val: synthetic, or MNIST's training images with the last
    5000 as val (a missing file is an error, never a fallback to synthetic)."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    if cfg.dataset == "synthetic":
        return synthetic_digits(**SYNTHETIC_SPLITS[split])
    path = _mnist_file(unpacked_data_path(cfg, [MNIST_TRAIN_FILES]))  # a .zip is unpacked once
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _cache:
        _cache.clear()
        _cache[key] = read_idx_images(path)
    images = _cache[key]  # (N, rows, cols)
    if images.shape[1] != images.shape[2] or images.shape[1] > cfg.image_size:
        raise DataError(f"{path}: images are {images.shape[1]}x{images.shape[2]}, expected square digits no larger "
                        f"than image_size {cfg.image_size} (MNIST digits are 28x28)")
    if len(images) <= MNIST_VAL_COUNT:
        raise DataError(f"{path}: only {len(images)} images; need more than {MNIST_VAL_COUNT} (the last "
                        f"{MNIST_VAL_COUNT} are the validation split); re-run `bash download.sh DATA_DIR`")
    return images[:-MNIST_VAL_COUNT] if split == "train" else images[-MNIST_VAL_COUNT:]


def global_index(step, rank, group_size, batch_size, slot):
    return (step * group_size + rank) * batch_size + slot


def _moving_mnist(cfg, digits, count, num_digits, seed, epoch=0):
    return MovingMNIST(digits, count, num_digits, input_frames=cfg.input_frames, output_frames=cfg.output_frames,
                       image_size=cfg.image_size, seed=seed, epoch=epoch)


def train_source(cfg, digits, epoch, group_size=1):  # the whole epoch, all ranks
    count = cfg.steps_per_epoch * group_size * cfg.batch_size
    return _moving_mnist(cfg, digits, count, cfg.num_digits_train, cfg.seed, epoch)


def validation_source(cfg, digits):
    return _moving_mnist(cfg, digits, cfg.val_sequences, cfg.num_digits_val, cfg.val_seed)


def generated_test_source(cfg, digits, count):
    return _moving_mnist(cfg, digits, count, cfg.num_digits_val, cfg.test_seed)


class RankBatches:
    """Item ``j`` is ``rank``'s whole batch of step ``start_step + j``, read with one ``read_batch`` call."""

    def __init__(self, source, rank, group_size, batch_size, start_step, steps):
        if not 0 <= rank < group_size:
            raise ValueError(f"rank {rank} outside [0, {group_size})")
        if not 0 <= start_step < steps:
            raise ValueError(f"start_step {start_step} outside [0, {steps})")
        self.source, self.rank, self.group_size = source, rank, group_size
        self.batch_size, self.start_step, self.steps = batch_size, start_step, steps

    def __len__(self):
        return self.steps - self.start_step

    def source_indices(self, j):  # -> (B,) int64
        slots = np.arange(self.batch_size, dtype=np.int64)
        return global_index(self.start_step + int(j), self.rank, self.group_size, self.batch_size, slots)

    def __getitem__(self, j):
        if not 0 <= j < len(self):
            raise IndexError(f"batch index {j} out of range [0, {len(self)})")
        return read_batch(self.source, self.source_indices(j))


VALID_COLUMN = "valid"  # with nodata: float32 1 where a target pixel has data, 0 where not


class MaskedBatches:
    """Item ``j`` of ``batches`` as (inputs, targets with no data set to the background 0, valid (B, T_out, C, H, W)
    float32 0/1): NaN-free tensors of fixed shape for the compiled step."""

    def __init__(self, batches):
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, j):
        inputs, targets = self.batches[j]
        filled, missing = fill_no_data(targets)  # (B, T_out, C, H, W) each
        return inputs, filled, (~missing).astype(np.float32)


_lowered_workers_noted = set()


def usable_cores():  # the affinity mask: a container may allow fewer cores than the host has
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def workers_for_host(requested):
    """``num_workers`` lowered to the usable cores (MindSpore refuses more), said once per process."""
    cores = usable_cores()
    if requested > cores and requested not in _lowered_workers_noted:
        _lowered_workers_noted.add(requested)
        print(f"note: num_workers {requested} lowered to {cores}, the CPU cores usable on this host", flush=True)
    return min(requested, cores)


def build_rank_dataset(cfg, source, rank=0, group_size=1, start_step=0):
    """MindSpore dataset of ``rank``'s (inputs, targets) batches of ``source`` from ``start_step``."""
    import mindspore.dataset as ds  # pylint: disable=import-outside-toplevel

    batches = RankBatches(source, rank, group_size, cfg.batch_size, start_step, cfg.steps_per_epoch)
    if cfg.nodata:
        batches = MaskedBatches(batches)
    return ds.GeneratorDataset(batches, column_names=list(COLUMNS + (VALID_COLUMN,) if cfg.nodata else COLUMNS),
                               shuffle=False,
                               num_parallel_workers=workers_for_host(cfg.num_workers),
                               python_multiprocessing=cfg.worker_type == "process")


def read_batch(source, indices):
    """``(inputs (b, T_in, C, H, W), targets or None)`` by the source's ``batch``, else item by item."""
    build = getattr(source, "batch", None)
    if callable(build):
        return build(indices)
    items = [source[int(i)] for i in indices]
    targets = None if items[0][1] is None else np.stack([y for _, y in items])
    return np.stack([x for x, _ in items]), targets


def iterate_batches(source, batch_size, limit=0):
    """``(first index, inputs, targets)`` batches in order, of the first ``limit`` sequences when > 0."""
    total = len(source) if limit <= 0 else min(limit, len(source))
    for start in range(0, total, batch_size):
        yield (start, *read_batch(source, np.arange(start, min(start + batch_size, total))))


def sequence_normalization(cfg):
    """The normalisation ``cfg`` fixes (a trained model's holds data_dtype), or None until the data say."""
    return (make_normalization(cfg.data_dtype, cfg.data_scale, cfg.data_min, cfg.data_max, nodata_values(cfg))
            if cfg.data_dtype else None)


def _file_options(cfg):  # keyword arguments of src.data.sequences' openers
    return dict(npz_key=cfg.npz_key, window_stride=cfg.window_stride, scale=cfg.data_scale, data_min=cfg.data_min,
                data_max=cfg.data_max, normalization=sequence_normalization(cfg), nodata=nodata_values(cfg),
                target_channels=cfg.target_channels)


def _check_local(path):
    if is_remote_url(path):
        raise DataError(f"data_path {path} is a remote URL; copy the sequence files to a local folder and pass that "
                        "folder (train.py and eval.py copy remote data in on ModelArts)")


def open_sequence_splits(cfg):
    _check_local(cfg.data_path)
    split = (1.0 - cfg.val_fraction - cfg.test_fraction, cfg.val_fraction, cfg.test_fraction)
    return open_sequences(cfg.data_path, cfg.data_layout, cfg.input_frames, cfg.output_frames, split=split,
                          split_seed=cfg.split_seed, **_file_options(cfg))


def config_for_frames(cfg, shape, dtype, where, expected_from="the config (channels, frame_height, frame_width)"):
    """``cfg`` with channels, frame_height, frame_width and data_dtype from the data; values ``cfg`` already
    fixes must agree, and the frames must fit the arch."""
    given = (cfg.channels, cfg.frame_height, cfg.frame_width)
    if any(g and g != s for g, s in zip(given, shape)):
        wanted, got = "x".join(str(g or "any") for g in given), "x".join(map(str, shape))
        raise DataError(f"{where}: frames are {got} (C x H x W) but {expected_from} expects {wanted}; use data of "
                        "that shape, or a model/config made for this data")
    try:
        check_tileable(shape[1], shape[2], cfg.arch, cfg.patch_size)
    except DataError as err:
        raise DataError(f"{where}: {err}") from None
    return cfg.replace(channels=int(shape[0]), frame_height=int(shape[1]), frame_width=int(shape[2]),
                       data_dtype=cfg.data_dtype or dtype)


class _ReorderedWindows:  # item i is windows[window_indices([i])[0]]

    def batch(self, indices):
        return read_batch(self.windows, self.window_indices(indices))

    def __getitem__(self, index):
        return self.windows[int(self.window_indices([index])[0])]


class WindowSubset(_ReorderedWindows):  # subset[i] is source[indices[i]]

    def __init__(self, source, indices):
        self.windows, self.indices = source, np.asarray(indices, dtype=np.int64)
        for name in ("channels", "height", "width", "normalization", "file", "path", "input_frames", "output_frames"):
            setattr(self, name, getattr(source, name, None))

    def __len__(self):
        return len(self.indices)

    def window_indices(self, indices):
        return self.indices[checked_indices(indices, len(self), "index")]


def evenly_spaced_windows(source, count):  # at most ``count`` windows, evenly spread
    total = len(source)
    if count <= 0 or count >= total:
        return source
    return WindowSubset(source, np.linspace(0, total - 1, count).round().astype(np.int64))


class ShuffledWindows(_ReorderedWindows):
    """One training epoch over the windows of a split: ``length`` items, item g is window
    ``perm_k[g % n]`` with k = g // n and perm_k = default_rng((seed, epoch, k)).permutation(n)."""

    def __init__(self, windows, length, seed, epoch):
        self.windows, self.length, self.seed, self.epoch = windows, int(length), int(seed), int(epoch)
        self._orders = {}  # pass k -> permutation of the n windows

    def __len__(self):
        return self.length

    def _order(self, k):
        if k not in self._orders:
            self._orders[k] = np.random.default_rng((self.seed, self.epoch, int(k))).permutation(len(self.windows))
        return self._orders[k]

    def window_indices(self, indices):
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.length):
            raise IndexError(f"epoch index out of range [0, {self.length})")
        passes, slots = np.divmod(idx, len(self.windows))
        return np.array([self._order(k)[s] for k, s in zip(passes, slots)], dtype=np.int64)


CROP_STREAM = 7  # random stream of the crop offsets, apart from the shuffling's


class RandomCrops:
    """Training windows cut to ``crop`` x ``crop`` pixels, inputs and targets at the same place; the offset of
    item i is drawn from default_rng((seed, epoch, i, CROP_STREAM)), so a resumed run and any rank see the same."""

    def __init__(self, windows, crop, frame_size, seed, epoch):
        self.windows, self.crop, self.seed, self.epoch = windows, int(crop), int(seed), int(epoch)
        self.height, self.width = (int(v) for v in frame_size)

    def __len__(self):
        return len(self.windows)

    def offsets(self, indices):  # -> (n, 2) int64 top-left corners (row, col)
        room = [self.height - self.crop + 1, self.width - self.crop + 1]
        rows = [np.random.default_rng((self.seed, self.epoch, int(i), CROP_STREAM)).integers(0, room)
                for i in np.asarray(indices).reshape(-1)]
        return np.array(rows, dtype=np.int64).reshape(-1, 2)

    def batch(self, indices):
        inputs, targets = read_batch(self.windows, indices)  # (n, T_in, C, H, W), (n, T_out, C, H, W)
        corners = self.offsets(indices)
        cut = lambda frames: np.stack([f[..., r:r + self.crop, c:c + self.crop] for f, (r, c) in zip(frames, corners)])
        return cut(inputs), cut(targets)  # (n, T, C, crop, crop) each

    def __getitem__(self, index):
        inputs, targets = self.batch([index])
        return inputs[0], targets[0]


def check_crop(cfg, path):
    """DataError when crop_size does not fit inside the frames of ``cfg`` (read from the data at ``path``)."""
    if cfg.crop_size and cfg.crop_size > min(cfg.frame_height, cfg.frame_width):
        raise DataError(f"{path}: frames are {cfg.frame_height}x{cfg.frame_width}, smaller than crop_size "
                        f"{cfg.crop_size}; use a crop_size up to {min(cfg.frame_height, cfg.frame_width)} (or 0: "
                        "whole frames)")


class TrainingData:
    """What training reads: ``epoch_source``, ``validation`` (or None), ``cfg`` (completed from own data) and
    ``record`` for the checkpoint; opened and checked before MindSpore starts or anything is written."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.splits = splits = open_sequence_splits(cfg) if cfg.dataset == "sequences" else None
        if splits is None:
            self.train_digits = load_digits(cfg, "train")
            self.validation = validation_source(cfg, load_digits(cfg, "val")) if cfg.val_sequences > 0 else None
            self.record = {"dataset": cfg.dataset}
            return
        shape = (splits.channels, splits.height, splits.width)
        self.cfg = config_for_frames(cfg, shape, splits.train.file.dtype, cfg.data_path)
        check_crop(self.cfg, cfg.data_path)
        self.validation = evenly_spaced_windows(splits.val, cfg.val_sequences) if cfg.val_sequences > 0 else None
        self.record = {"dataset": "sequences", "frame_shape": list(shape),
                       "normalization": splits.normalization.to_dict(), "split": splits.split_record,
                       "windows": {name: len(splits[name]) for name in ("train", "val", "test")}}

    def epoch_source(self, epoch, group_size=1):  # steps_per_epoch * G * B sequences
        if self.splits is None:
            return train_source(self.cfg, self.train_digits, epoch, group_size)
        length = self.cfg.steps_per_epoch * group_size * self.cfg.batch_size
        windows = ShuffledWindows(self.splits.train, length, self.cfg.seed, epoch)
        if not self.cfg.crop_size:
            return windows
        frame_size = (self.cfg.frame_height, self.cfg.frame_width)
        return RandomCrops(windows, self.cfg.crop_size, frame_size, self.cfg.seed, epoch)

    def describe(self, group_size=1):
        cfg = self.cfg
        per_epoch = cfg.steps_per_epoch * cfg.batch_size * group_size
        per_step = f"({cfg.batch_size} per step per device x {group_size} device(s))"
        if self.splits is None:
            return (f"data: {cfg.dataset} digits, {cfg.num_digits_train} per training sequence, {per_epoch} sequences "
                    f"per epoch {per_step}")
        train, norm = self.splits.train, self.splits.normalization
        val = "no validation" if self.validation is None else f"validation on {len(self.validation)} of " \
            f"{len(self.splits.val)} val windows"
        return (f"data: {cfg.data_path}: frames {cfg.channels}x{cfg.frame_height}x{cfg.frame_width} (C x H x W) "
                f"{train.file.dtype}, {norm.scale} [{norm.data_min:g}, {norm.data_max:g}] -> [0, 1]; "
                f"{len(train)} training windows of {cfg.input_frames}+{cfg.output_frames} frames "
                f"({len(train.sequence_indices)} sequences); {per_epoch} windows per epoch {per_step} = "
                f"{per_epoch / len(train):.2f} passes{self._crops()}{self._targets()}; {val}"
                f"{no_data_text(train.file, norm)}")

    def _targets(self):
        chosen = self.cfg.target_channels
        return f", predicting channel(s) {', '.join(map(str, chosen))} of {self.cfg.channels}" if chosen else ""

    def _crops(self):
        crop = self.cfg.crop_size
        return f", trained on random {crop}x{crop} crops (validation on whole frames)" if crop else ""


def no_data_text(file, norm):
    """"; no-data ..." for the training log: the markers, what is done with them and, for a float file (scanned
    once), their share of its values; "" without ``nodata``."""
    if not norm.nodata:
        return ""
    count = getattr(file, "no_data_count", None)
    share = "" if count is None else f", {count} of {int(np.prod(file.shape))} values of the file " \
        f"({100.0 * count / max(1, int(np.prod(file.shape))):.2f} %)"
    return (f"; no-data {', '.join(f'{v:g}' for v in norm.nodata)}{share}: inputs filled with {norm.data_min:g} "
            "(normalised 0), targets left out of the loss and the scores")


def _say_note(note):
    if note:
        print(f"note: {note}", flush=True)


def evaluation_windows(cfg, trained=None):
    """(source, description) of what eval.py scores: the ``eval_split`` of a file or directory, or ``all``
    windows of a file; only the first ``num_sequences`` when > 0. ``trained`` (src.data.split_record.TrainedOn,
    None: no model) is checked: a test/val split that is not the split of record is refused in one line, and
    ``all`` says how many of the file's sequences the model trained on."""
    path, split, is_dir = cfg.data_path, cfg.eval_split, os.path.isdir(cfg.data_path)
    _check_local(path)
    if is_dir and split == "all":
        raise ConfigError(f"eval_split all scores one file, but data_path {path} is a directory; point it at a "
                          "file, or use eval_split test (the directory's test file)")
    if is_dir or split == "all":
        found = split_file_paths(path, split) if is_dir else [path]
        if len(found) != 1:
            what = f"both {split}.npy and {split}.npz" if found else f"no {split}.npy or {split}.npz"
            raise DataError(f"data_path {path} holds {what}; eval.py scores the {split} file of a directory "
                            f"with eval_split {split} (keep one), or point data_path at one file")
        source = open_sequence_file(found[0], cfg.data_layout, cfg.input_frames, cfg.output_frames,
                                    **_file_options(cfg))
        what = f"{f'the {split} file' if is_dir else 'every window'} of {found[0]}"
        if trained is not None:
            current = file_fingerprint(source.file)
            if is_dir:
                _say_note(check_split(trained, {"mode": "directory", "path": path, "file": found[0],
                                                "fingerprint": {split: current}}, split))
            else:
                statement = every_window_statement(trained, current)
                what += f" ({statement})" if statement else ""  # printed and in metrics.json
    else:
        splits = open_sequence_splits(cfg)
        _say_note(check_split(trained, splits.split_record, split))
        source = splits[split]
        fraction = cfg.test_fraction if split == "test" else cfg.val_fraction
        what = (f"the {split} split of {path} ({len(source.sequence_indices)} sequences; split_seed "
                f"{cfg.split_seed}, {split}_fraction {fraction:g})")
    described = f"{what}: {len(source)} windows of {cfg.input_frames}+{cfg.output_frames} frames"
    if cfg.num_sequences:
        count = min(cfg.num_sequences, len(source))
        described += f", the first {count} scored"
        source = WindowSubset(source, np.arange(count))
    return source, described


def input_file_windows(cfg, path):
    """predict.py's ``--input`` file of own sequences, read as training read its data."""
    _check_local(path)
    return open_input_file(path, cfg.data_layout, cfg.input_frames, cfg.output_frames, **_file_options(cfg))
