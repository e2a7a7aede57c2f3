"""Data wiring: digit sources, the per-rank training dataset, validation, evaluation and batching.

Training sequences are generated on the fly. Epoch ``e`` of a run on G devices with batch B
and ``steps_per_epoch`` steps is the MovingMNIST source seeded with (seed, e), of
``steps_per_epoch * G * B`` sequences; at step s, rank r takes the B global indices
``(s*G + r)*B + b`` for b in [0, B). This makes ranks disjoint, and a run resumed at step s
sees exactly the batches an uninterrupted run would have seen. Each training batch is one
item of the dataset, generated whole (:class:`RankBatches`).

MindSpore is imported only by :func:`build_train_dataset`; everything else is plain numpy.
"""
import os

import numpy as np

from src.data.archive import unpacked_data_path
from src.data.digits import synthetic_digits
from src.data.idx import read_idx_images
from src.data.moving_mnist import MovingMNIST
from src.errors import DataError

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


def build_train_dataset(cfg, digits, epoch, rank=0, group_size=1, start_step=0):
    """MindSpore dataset of rank ``rank``'s training batches for ``epoch``, from ``start_step``.

    Columns ("inputs", "targets"), each (B, T, 1, H, W) float32; steps_per_epoch - start_step
    batches, each generated whole by one worker. ``cfg.worker_type`` picks threads (the
    default: little start-up cost) or processes (no contention on Python's interpreter lock);
    bench/data_throughput.py measures both.
    """
    import mindspore.dataset as ds  # pylint: disable=import-outside-toplevel

    batches = RankBatches(train_source(cfg, digits, epoch, group_size), rank, group_size, cfg.batch_size,
                          start_step, cfg.steps_per_epoch)
    return ds.GeneratorDataset(batches, column_names=list(COLUMNS), shuffle=False,
                               num_parallel_workers=cfg.num_workers,
                               python_multiprocessing=cfg.worker_type == "process")


def validation_source(cfg, digits):
    """The fixed validation set: cfg.val_sequences sequences of cfg.num_digits_val digits, seeded by val_seed."""
    return MovingMNIST(digits, cfg.val_sequences, cfg.num_digits_val, input_frames=cfg.input_frames,
                       output_frames=cfg.output_frames, image_size=cfg.image_size, seed=cfg.val_seed, epoch=0)


def held_out_source(cfg, digits, count):
    """The generated evaluation set: ``count`` sequences of cfg.num_digits_val digits seeded by test_seed.

    The config refuses test_seed == val_seed (and == seed), so these sequences come from other
    random streams than the validation (and training) sequences, even on the same digits.
    """
    return MovingMNIST(digits, count, cfg.num_digits_val, input_frames=cfg.input_frames,
                       output_frames=cfg.output_frames, image_size=cfg.image_size, seed=cfg.test_seed, epoch=0)


def read_batch(source, indices):
    """Sequences ``indices`` of a random-access source, stacked: ``(inputs (b, T_in, 1, H, W),
    targets (b, T_out, 1, H, W))``.

    This is the one batcher of the project: a source with a ``batch(indices)`` method (the
    generator) builds the whole batch at once; any other (``source[i] -> (inputs, targets)``)
    is read item by item and stacked.
    """
    build = getattr(source, "batch", None)
    if callable(build):
        return build(indices)
    items = [source[int(i)] for i in indices]
    return np.stack([x for x, _ in items]), np.stack([y for _, y in items])


def iterate_batches(source, batch_size, limit=0):
    """Yield numpy ``(inputs (b, T_in, 1, H, W), targets (b, T_out, 1, H, W))`` batches in order.

    ``limit`` > 0 stops after that many sequences. The last batch may be smaller than batch_size.
    """
    total = len(source) if limit <= 0 else min(limit, len(source))
    for start in range(0, total, batch_size):
        yield read_batch(source, np.arange(start, min(start + batch_size, total)))
