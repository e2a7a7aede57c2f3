"""Test-only helpers for data files: writers of the two Moving MNIST formats (the project itself
only reads them), the one-line DataError check, and views of the data the project needs only in tests."""
import gzip

import numpy as np
import pytest

from src.data.idx import _HEADER, IDX_IMAGES_MAGIC
from src.errors import DataError


def write_idx_images(path, images, compress=None):
    """Write (N, rows, cols) uint8 images as an IDX file; gzip if ``compress`` or path ends in .gz."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"expected (N, rows, cols) uint8 images, got {images.shape} {images.dtype}")
    data = _HEADER.pack(IDX_IMAGES_MAGIC, *images.shape) + np.ascontiguousarray(images).tobytes()
    if compress is None:
        compress = str(path).endswith(".gz")
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_test_file(path, sequences):
    """Write (N, T, H, W) uint8 sequences as an .npy in the published (T, N, H, W) layout."""
    sequences = np.asarray(sequences)
    if sequences.ndim != 4 or sequences.dtype != np.uint8:
        raise ValueError(f"expected (N, T, H, W) uint8 sequences, got {sequences.shape} {sequences.dtype}")
    with open(path, "wb") as f:  # a file object keeps np.save from appending ".npy"
        np.save(f, np.ascontiguousarray(sequences.transpose(1, 0, 2, 3)), allow_pickle=False)
    return path


def data_error_message(call, *args, **kwargs):
    """The message of the DataError raised by ``call``; it must be one line."""
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def build_train_dataset(cfg, digits, epoch, rank=0, group_size=1, start_step=0):
    """MindSpore dataset of rank ``rank``'s generated training batches for ``epoch``, from ``start_step``."""
    from src.data.pipeline import build_rank_dataset, train_source

    return build_rank_dataset(cfg, train_source(cfg, digits, epoch, group_size), rank, group_size, start_step)


def window_location(source, index):
    """(sequence index in the file, first frame) of window ``index`` of a WindowSource."""
    seq, start = source._locations([index])  # pylint: disable=protected-access
    return int(seq[0]), int(start[0])


def sequence_layout(source, index):
    """MovingMNIST ``layouts()`` of one sequence: (digit_ids (D,), positions (D, T, 2), velocities (D, T, 2))."""
    digit_ids, positions, velocities = source.layouts([index])
    return digit_ids[0], positions[0], velocities[0]
