"""A :class:`~src.data.convert.source.Source` streamed into ``OUT.npy`` (N, T, C, H, W) with its sidecar ``OUT.json``.

The array is a temporary file beside ``OUT.npy``, created with ``numpy.lib.format.open_memmap`` and filled
through a memory map of one sequence at a time (unmapped after it, its pages left to the kernel to write: the
process never holds more than one sequence, however large the file), then renamed into place when complete
(src.io.atomic_path), and the sidecar the same way: a failure or Ctrl-C leaves ``OUT.npy`` absent or as it
was, never half written. The file's blocks are allocated up front, so a full disk is one error line before any
frame is read, not a crash while writing pages.
"""
import contextlib
import errno
import json
import math
import os

import numpy as np

from src.config import SCHEMA, untileable
from src.data.sequences import split_sequences
from src.errors import DataError, UserError
from src.io import atomic_path

LAYOUT = "NTCHW"  # the data_layout of every converted file


def sidecar_path(out_path):
    """``OUT.json`` beside ``OUT.npy``."""
    return os.path.splitext(out_path)[0] + ".json"


def check_target(out_path, overwrite):
    """UserError unless ``out_path`` is a ``.npy`` name that may be written (existing files need ``overwrite``)."""
    if not out_path.lower().endswith(".npy"):
        raise UserError(f"{out_path}: the output must be a .npy file name (e.g. data/frames.npy)")
    if os.path.isdir(out_path):
        raise UserError(f"{out_path} is a directory; name the .npy file to write")
    existing = [p for p in (out_path, sidecar_path(out_path)) if os.path.exists(p)]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists; choose another output name or pass --overwrite true")


class ValueStats:
    """Minimum and maximum of the finite values written, and the count of NaN/inf."""

    def __init__(self):
        self.low, self.high, self.non_finite = math.inf, -math.inf, 0

    def add(self, block):
        if block.dtype.kind == "f":
            finite = np.isfinite(block)
            bad = block.size - int(np.count_nonzero(finite))
            if bad:
                self.non_finite += bad
                block = block[finite]
        if block.size:
            self.low, self.high = min(self.low, float(block.min())), max(self.high, float(block.max()))

    def value_range(self):
        return None if self.low > self.high else [self.low, self.high]


def _filled(block, fill):
    """``block`` with NaN replaced by ``fill`` (None: kept)."""
    if fill is None or block.dtype.kind != "f":
        return block
    missing = np.isnan(block)
    return np.where(missing, block.dtype.type(fill), block) if missing.any() else block


def _reserve(path):
    """Allocate the blocks of ``path`` (a sparse file after open_memmap) so that a full disk is an OSError here."""
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.path.getsize(path))
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):  # a file system without it: go on
            raise
    finally:
        os.close(fd)


def _create(tmp, shape, dtype):
    """Create the .npy file (header, then space for the array); return the byte offset of its data."""
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
    offset = array.offset
    del array
    _reserve(tmp)
    return offset


def _stream(source, tmp, stats, fill, on_sequence):
    offset = _create(tmp, source.shape, source.dtype)
    sequence_bytes = int(np.prod(source.shape[1:])) * source.dtype.itemsize
    for index in range(source.shape[0]):
        array = np.memmap(tmp, dtype=source.dtype, mode="r+", offset=offset + index * sequence_bytes,
                          shape=source.shape[1:])  # this sequence only: (T, C, H, W)
        try:
            written = 0
            for start, block in source.blocks(index):
                if block.shape[1:] != source.shape[2:] or start != written:
                    raise DataError(f"{source.path}: sequence {index} frame {start} read as {block.shape[1:]}, "
                                    f"expected {source.shape[2:]}; did the source change while it was read?")
                block = _filled(block, fill)
                stats.add(block)
                array[start:start + len(block)] = block
                written += len(block)
        finally:
            del array
        if on_sequence:
            on_sequence(index + 1)


def train_frames(num_frames):
    """(input_frames, output_frames) for train.py: the defaults when they fit, else half and half."""
    inputs, outputs = SCHEMA["input_frames"].default, SCHEMA["output_frames"].default
    if num_frames >= inputs + outputs:
        return None
    return max(1, num_frames // 2), num_frames - max(1, num_frames // 2)


def _number(value):
    return np.format_float_positional(np.float32(value), trim="-")


def train_options(out_path, shape, dtype, value_range):
    """(train.py options, notes) that read the converted file."""
    n, t, _, h, w = shape
    options = ["--dataset", "sequences", "--data_path", out_path, "--data_layout", LAYOUT]
    notes = []
    if np.dtype(dtype).kind == "f":
        if value_range and value_range[0] < value_range[1]:
            if value_range[0] < 0.0 or value_range[1] > 1.0:
                options += ["--data_scale", "minmax", "--data_min", _number(value_range[0]),
                            "--data_max", _number(value_range[1])]
        else:
            notes.append("every value is the same (or missing): set --data_scale minmax --data_min/--data_max to the "
                         "physical range of the quantity")
    frames = train_frames(t)
    if frames and t >= 2:
        options += ["--input_frames", str(frames[0]), "--output_frames", str(frames[1])]
    elif t < 2:
        notes.append(f"{t} frame per sequence: nothing to predict; a sequence needs input and output frames")
    problem = untileable(h, w, SCHEMA["arch"].default, SCHEMA["patch_size"].default)
    if problem:
        notes.append(f"frames are {problem}: crop or pad them before training")
    fractions = SCHEMA["val_fraction"].default, SCHEMA["test_fraction"].default
    try:
        split_sequences(n, (1.0 - sum(fractions), *fractions), 0)
    except DataError:
        notes.append(f"{n} sequence(s): train.py splits one file by sequence ({fractions[0]:g} validation, "
                     f"{fractions[1]:g} test); convert more sequences or set --val_fraction/--test_fraction so that "
                     "every split gets one")
    return options, notes


def sidecar_record(source, out_path, stats, fill, command):
    options, notes = train_options(out_path, source.shape, source.dtype, stats.value_range())
    if stats.non_finite:  # NaN kept (no --fill): train on them as no-data pixels
        options += ["--nodata", "nan"]
    return {"data_file": os.path.basename(out_path), "data_layout": LAYOUT, "shape": list(source.shape),
            "dtype": source.dtype.name, "source": os.path.abspath(source.path), **source.record,
            "value_range": stats.value_range(), "non_finite_values": stats.non_finite,
            "fill": fill, "train_options": options, "notes": notes, "command": command}


def write_converted(source, out_path, overwrite=False, fill=None, command="", on_sequence=None):
    """Write ``source`` to ``out_path`` and its sidecar; return the sidecar's record. ``fill`` replaces NaN
    (None keeps NaN); ``on_sequence(done)`` is called after each sequence."""
    check_target(out_path, overwrite)
    stats = ValueStats()
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        with contextlib.ExitStack() as moves:  # the sidecar entered first: moved into place after the data
            tmp_json = moves.enter_context(atomic_path(sidecar_path(out_path)))
            tmp_npy = moves.enter_context(atomic_path(out_path))
            _stream(source, tmp_npy, stats, fill, on_sequence)
            record = sidecar_record(source, out_path, stats, fill, command)
            with open(tmp_json, "w", encoding="utf-8") as f:
                f.write(json.dumps(record, indent=1) + "\n")
    except OSError as err:
        raise UserError(f"could not write {out_path} ({err.strerror or err}); nothing was written: free disk space "
                        "or fix permissions and retry") from None
    finally:
        source.close()
    return record
