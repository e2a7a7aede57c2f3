"""Users' own sequence arrays (radar, satellite, video) as (N, T, C, H, W) float32 frames in [0, 1], in numpy.

A file is split BY SEQUENCE (validation frames are never trained on); ``.npy`` is memory-mapped (files larger
than memory train) and pickles are refused. Every problem a user can fix is one DataError line naming the
file, the numbers and the key to change.
"""
import math
import os
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np

from src.config import (LAYOUTS, MAX_CHANNELS, SCALES, data_range_problem, frame_tiling, nodata_list, scaling_problem,
                        untileable)
from src.data.idx import array_file_kind, check_data_file
from src.data.split_record import file_fingerprint
from src.errors import DataError, first_line

SPLIT_NAMES = ("train", "val", "test")
DTYPE_MAX = {"uint8": 255.0, "uint16": 65535.0, "float16": 1.0, "float32": 1.0}  # auto: value mapped to 1
_AXES = {layout: f"({', '.join(layout)})" for layout in LAYOUTS}  # e.g. "(N, T, H, W)": a layout names its axes
_AXIS_NAMES = {"N": "sequence", "T": "frame", "C": "channel", "H": "row", "W": "column"}
_SCAN_BYTES = 64 << 20  # chunk size of the NaN/range scan of float files
_EXTENSIONS = (".npy", ".npz")
_SAVE_NUMBERS = ": save a numeric array with numpy.save/numpy.savez"
VALUE_TOLERANCE = 1e-4  # user floats may exceed [0, 1] by rounding only
TEST_FILE = "mnist_test_seq.npy"  # uint8 (T=20, N=10000, H=64, W=64), time first
_GET = "run `bash download.sh DATA_DIR` to fetch it, or copy mnist_test_seq.npy there by hand"
_FIX = "re-run `bash download.sh DATA_DIR` to fetch a good copy"


@dataclass(frozen=True)
class Normalization:
    """x' = clip((x - data_min) / (data_max - data_min), 0, 1), in the file's units; ``nodata``: the values
    (floats, NaN for "nan") that mark pixels without a measurement (the ``nodata`` config key)."""

    scale: str  # "auto" | "minmax"
    data_min: float
    data_max: float
    dtype: str  # dtype of the data it was made for
    nodata: tuple = ()

    def to_dict(self):  # for the checkpoint; a record without no-data values is unchanged
        record = {"scale": self.scale, "data_min": float(self.data_min), "data_max": float(self.data_max),
                  "dtype": self.dtype}
        return dict(record, nodata=nodata_list(self.nodata, None)) if self.nodata else record

    @classmethod
    def from_dict(cls, values, where="normalization"):
        try:
            nodata = tuple(float(v) for v in values.get("nodata", ()))
            norm = cls(str(values["scale"]), float(values["data_min"]), float(values["data_max"]),
                       str(values["dtype"]), nodata)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise DataError(f"{where}: not a normalisation record ({err!r}); expected keys scale, data_min, "
                            f"data_max, dtype") from None
        if norm.scale not in SCALES or norm.dtype not in DTYPE_MAX or data_range_problem(norm.data_min, norm.data_max):
            raise DataError(f"{where}: invalid normalisation record {values!r}")
        return norm

    def normalize(self, raw):  # file values -> float32 in [0, 1]
        x = np.asarray(raw, dtype=np.float32)
        if self.data_min != 0.0:
            x = x - np.float32(self.data_min)
        x = x / np.float32(self.data_max - self.data_min)  # the same arithmetic as x / 255 when auto
        return np.clip(x, 0.0, 1.0, out=x)

    def denormalize(self, values):  # [0, 1] -> float32 in the file's units
        x = np.asarray(values, dtype=np.float32)
        return x * np.float32(self.data_max - self.data_min) + np.float32(self.data_min)

    def missing(self, raw):
        """bool array of ``raw``'s shape: True where a value is a no-data marker; None without markers."""
        return missing_values(raw, self.nodata) if self.nodata else None

    def frames(self, raw):
        """File values -> float32 in [0, 1] with NaN at no-data pixels (only with ``nodata``)."""
        x = self.normalize(raw)
        missing = self.missing(raw)
        if missing is not None:
            x[missing] = np.nan
        return x


def missing_values(raw, nodata):
    """True where ``raw`` is NaN (when NaN is among ``nodata``) or equals one of the declared numbers."""
    raw = np.asarray(raw)
    missing = np.zeros(raw.shape, dtype=bool)
    for value in nodata:
        if math.isnan(value):
            if raw.dtype.kind == "f":
                missing |= np.isnan(raw)
        else:
            missing |= raw == value  # in the file's dtype, as the value was written
    return missing


def fill_no_data(frames, background=0.0):
    """(frames with NaN replaced by ``background``, the bool mask of those pixels): what the network sees."""
    missing = np.isnan(frames)
    return (np.where(missing, np.float32(background), frames).astype(np.float32, copy=False) if missing.any()
            else frames), missing


def make_normalization(dtype, scale="auto", data_min=None, data_max=None, nodata=()):
    """The normalisation of data of ``dtype`` (float ``auto`` data is range-checked separately)."""
    dtype = np.dtype(dtype).name
    if dtype not in DTYPE_MAX:
        raise DataError(f"dtype {dtype} is not supported (use one of {', '.join(DTYPE_MAX)})")
    if scale not in SCALES:
        raise DataError(f"data_scale {scale!r} is not one of {', '.join(SCALES)}")
    problem = scaling_problem(scale, data_min, data_max)
    if problem:
        raise DataError(problem)
    nodata = tuple(float(v) for v in nodata)
    if scale == "auto":
        return Normalization("auto", 0.0, DTYPE_MAX[dtype], dtype, nodata)
    return Normalization("minmax", float(data_min), float(data_max), dtype, nodata)


def _check_layout(layout):
    if layout not in LAYOUTS:
        raise DataError(f"data_layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    return layout


def _is_pickle_error(err):
    return "object" in str(err).lower() or "pickle" in str(err).lower()


def _pickled(path, key="", what="numbers", fix=_SAVE_NUMBERS):
    member = f" (array '{key}')" if key else ""
    return DataError(f"{path}{member} holds pickled Python objects, not {what}; refusing to load it (pickles "
                     f"can run code){fix}")


def load_npy(path, name=None, what="numbers", pickled_fix=_SAVE_NUMBERS, fix="", copy="copy"):
    """The one .npy loader: memory-mapped, never unpickling; a broken file is a DataError naming ``name``."""
    name = path if name is None else name
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        if isinstance(err, ValueError) and _is_pickle_error(err):
            raise _pickled(name, what=what, fix=pickled_fix) from None
        raise DataError(f"{name} is not a readable .npy file ({first_line(err)}; truncated {copy}?){fix}") from None


def _load_npz(path, key):  # the array ``key`` (or the only one), loaded into memory
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.files)
            if not key and len(keys) != 1:
                raise DataError(f"{path} holds {len(keys)} arrays ({', '.join(keys) or 'none'}); set npz_key to "
                                "the one to use")
            if key and key not in keys:
                raise DataError(f"{path} has no array '{key}' (npz_key); it holds: {', '.join(keys) or 'none'}")
            key = key or keys[0]
            try:
                return np.asarray(archive[key])
            except ValueError as err:
                if _is_pickle_error(err):
                    raise _pickled(path, key) from None
                raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(f"{path} is not a readable .npz file ({err}; truncated copy?)") from None


def checked_indices(indices, length, what):
    """``indices`` as a 1-D int64 array; IndexError naming the first one outside [0, length)."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    bad = (idx < 0) | (idx >= length)
    if bad.any():
        raise IndexError(f"{what} {idx[bad][0]} out of range [0, {length})")
    return idx


def _sizes(layout, shape):  # -> (N, T, C, H, W)
    size = dict(zip(layout, shape))
    return size["N"], size["T"], size.get("C", 1), size["H"], size["W"]


def _check_shape(path, layout, shape):
    others = [x for x in LAYOUTS if x != layout and len(x) == len(shape)
              and ("C" not in x or shape[x.index("C")] <= MAX_CHANNELS)]
    hint = f"; the shape fits data_layout {' or '.join(others)}" if others else ""
    if len(shape) != len(layout):
        raise DataError(f"{path}: shape {tuple(shape)} has {len(shape)} dimensions, data_layout {layout} needs "
                        f"{len(layout)} {_AXES[layout]}{hint}")
    if "C" in layout and shape[layout.index("C")] > MAX_CHANNELS:
        raise DataError(f"{path}: shape {tuple(shape)} in data_layout {layout} {_AXES[layout]} gives "
                        f"{shape[layout.index('C')]} channels, more than {MAX_CHANNELS} (a heuristic limit: this "
                        f"usually means the layout is wrong){hint}")
    n, t, c, h, w = _sizes(layout, shape)
    if n == 0:
        raise DataError(f"{path}: holds no sequences (shape {tuple(shape)}, data_layout {layout} {_AXES[layout]})")
    if min(t, c, h, w) == 0:
        raise DataError(f"{path}: empty frames (shape {tuple(shape)}, data_layout {layout} {_AXES[layout]})")


class SequenceFile:
    """One opened array file in (N, T, C, H, W) terms; frames are read on demand."""

    def __init__(self, path, layout, npz_key=""):
        self.path = os.fspath(path)
        self.layout = _check_layout(layout)
        if os.path.isdir(self.path):
            raise DataError(f"{self.path} is a directory, expected an .npy/.npz file")
        if not os.path.isfile(self.path):
            raise DataError(f"data file {self.path} not found")
        self.kind, head = array_file_kind(self.path)
        if self.kind not in ("npy", "npz"):
            what = {"empty": "empty", "pickle": "a Python pickle (refused: loading pickles can run code); "
                    "save arrays with numpy.save"}.get(self.kind, f"neither .npy nor .npz (starts with {head!r})")
            raise DataError(f"{self.path} is {what}")
        self._array = load_npy(self.path) if self.kind == "npy" else _load_npz(self.path, npz_key)
        self.dtype = self._array.dtype.name
        if self.dtype not in DTYPE_MAX:
            raise DataError(f"{self.path}: dtype {self.dtype} is not supported (use one of {', '.join(DTYPE_MAX)}; "
                            f"e.g. convert with array.astype(numpy.float32))")
        _check_shape(self.path, self.layout, self._array.shape)
        self.shape = tuple(int(s) for s in self._array.shape)
        self.num_sequences, self.num_frames, self.channels, self.height, self.width = _sizes(self.layout, self.shape)
        self._value_range = None  # (nodata, (min, max)) once scanned
        self.no_data_count = None  # no-data values found by the scan of a float file

    def value_range(self, nodata=()):
        """(min, max) of a float file without its ``nodata`` values, scanned once (the no-data count is kept in
        ``no_data_count``); DataError on NaN/inf that are not declared no-data."""
        nodata = tuple(nodata)
        if self._value_range is not None and self._value_range[0] == nodata:
            return self._value_range[1]
        array = self._array
        # chunks of the flat array: bounded memory whatever the shape (one frame row of a TNHW file can be
        # gigabytes); order "F" keeps the flattening a view for Fortran-ordered files
        order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous else "C"
        flat = array.reshape(-1, order=order)
        step = max(1, _SCAN_BYTES // array.itemsize)
        bad, first, low, high, missing_count = 0, None, math.inf, -math.inf, 0
        for start in range(0, flat.size, step):
            chunk = np.asarray(flat[start:start + step])
            missing = missing_values(chunk, nodata) if nodata else None
            finite = np.isfinite(chunk) if missing is None else np.isfinite(chunk) | missing
            count = chunk.size - int(np.count_nonzero(finite))
            if count:
                if first is None:
                    where = np.unravel_index(start + int(np.argmin(finite)), array.shape, order=order)
                    first = tuple(int(i) for i in where)
                bad += count
            elif not bad:
                values = chunk if missing is None else chunk[~missing]
                missing_count += 0 if missing is None else int(np.count_nonzero(missing))
                if values.size:
                    low, high = min(low, float(values.min())), max(high, float(values.max()))
        if bad:
            raise self._non_finite(bad, first, nodata)
        self.no_data_count = missing_count
        self._value_range = nodata, (low, high)
        return low, high

    def _non_finite(self, bad, first, nodata):
        index = dict(zip(self.layout, first))  # e.g. "sequence 3, frame 0, row 5, column 7"
        where = ", ".join(f"{_AXIS_NAMES[axis]} {index[axis]}" for axis in "NTCHW" if axis in index)
        what = "inf values (not declared no-data)" if nodata else "NaN/inf values"
        fix = ("replace the inf values before training" if nodata else
               "train with --nodata nan to leave NaN pixels out of the loss and the scores (inputs filled with the "
               "background), or replace them before training")
        return DataError(f"{self.path}: {bad} {what} in {self.dtype} data; the first at {where} (array index "
                         f"{first}); {fix}")

    def read_windows(self, sequences, starts, length):
        """(B, length, C, H, W) frames from ``starts[b]`` of ``sequences[b]``, file dtype, one fancy index."""
        seq = np.asarray(sequences, dtype=np.int64)[:, None]  # (B, 1)
        frames = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(length)  # (B, L)
        block = np.asarray(self._array[frames, seq] if self.layout == "TNHW" else self._array[seq, frames])
        frame_axes = self.layout.replace("N", "").replace("T", "")  # block: (B, L, *frame_axes)
        return np.moveaxis(block, 2 + frame_axes.index("C"), 2) if "C" in frame_axes else block[:, :, None]

    def read_rows(self, sequences, frames, rows):
        """(B, R, C, W) values of the file's dtype: row ``rows[r]`` of frame ``frames[r]`` of each of ``sequences``,
        in one fancy index (whole rows: the cheapest reads of a memory-mapped file); the fingerprint's sample."""
        seq = np.asarray(sequences, dtype=np.int64)[:, None]  # (B, 1)
        frame, row = (np.asarray(v, dtype=np.int64)[None, :] for v in (frames, rows))  # (1, R) each
        index = tuple({"N": seq, "T": frame, "H": row}.get(axis, slice(None)) for axis in self.layout)
        block = np.asarray(self._array[index])  # (B, R, *the C and W axes in layout order)
        rest = [axis for axis in self.layout if axis in "CW"]
        return np.moveaxis(block, 2 + rest.index("C"), 2) if "C" in rest else block[:, :, None]

    def describe(self):
        return (f"{self.path}: {self.num_sequences} sequences x {self.num_frames} frames of {self.channels}x"
                f"{self.height}x{self.width} {self.dtype} ({self.layout} {self.shape})")


def _normalization_for(files, scale, data_min, data_max, normalization, nodata=()):
    """The normalisation of ``files`` (all of one dtype), range-checking float ``auto`` data."""
    dtype = files[0].dtype
    norm = make_normalization(dtype, scale, data_min, data_max, nodata) if normalization is None else normalization
    if not isinstance(norm, Normalization):  # its to_dict record
        norm = Normalization.from_dict(norm)
    if norm.scale == "auto" and norm.dtype != dtype:
        raise DataError(f"{files[0].path}: dtype {dtype}, but the normalisation (auto, {norm.data_min:g}.."
                        f"{norm.data_max:g}) was made for {norm.dtype} data; convert the file to {norm.dtype}")
    for f in (f for f in files if f.dtype.startswith("float")):
        low, high = f.value_range(norm.nodata)  # also rejects NaN/inf that are not declared no-data
        if norm.scale == "auto" and (low < 0.0 or high > 1.0):
            raise DataError(f"{f.path}: {f.dtype} values span [{low:g}, {high:g}], outside [0, 1] as data_scale "
                            "auto needs for float data; set data_scale minmax with data_min and data_max (e.g. "
                            "-10 and 60 for dBZ)")
    return norm


def _check_frames(input_frames, output_frames, window_stride):
    for name, value in (("input_frames", input_frames), ("output_frames", output_frames)):
        if int(value) != value or value < 1:
            raise DataError(f"{name} must be an integer >= 1, got {value!r}")
    if int(window_stride) != window_stride or window_stride < 0:
        raise DataError(f"window_stride must be an integer >= 0 (0 = input_frames + output_frames), got "
                        f"{window_stride!r}")
    return int(input_frames), int(output_frames), int(window_stride) or int(input_frames) + int(output_frames)


_FORECAST = "output_frames (lead_frames when evaluating further)"  # the frames after the inputs


def _check_long_enough(file, input_frames, output_frames, inputs_only=False):
    length = input_frames + output_frames
    if inputs_only and file.num_frames != input_frames and file.num_frames < length:
        raise DataError(f"{file.path}: sequences have {file.num_frames} frames; give exactly input_frames = "
                        f"{input_frames} frames per sequence to forecast after them, or at least input_frames + "
                        f"{_FORECAST} = {length} to score the forecasts (data_layout {file.layout} "
                        f"{_AXES[file.layout]})")
    if file.num_frames < length and not inputs_only:
        raise DataError(f"{file.path}: sequences have {file.num_frames} frames, fewer than input_frames + "
                        f"{_FORECAST} = {input_frames} + {output_frames} = {length} (data_layout {file.layout} "
                        f"{_AXES[file.layout]}); use fewer frames or longer sequences")


class BatchSource:
    """A source whose item ``i`` is its ``batch([i])`` unstacked (None stays None)."""

    def __getitem__(self, index):
        return tuple(None if part is None else part[0] for part in self.batch([index]))


class WindowSource(BatchSource):
    """Windows of some sequences of a file: ``source[i] -> (inputs (T_in, C, H, W), targets (T_out, C_out, H, W))``;
    window i is window ``i % windows_per_sequence`` of ``sequence_indices[i // windows_per_sequence]``; the targets
    hold the ``target_channels`` (indices; empty: all channels)."""

    def __init__(self, file, sequence_indices, input_frames, output_frames, window_stride, normalization,
                 name="", target_channels=()):
        self.file, self.path, self.name = file, file.path, name
        self.target_channels = checked_target_channels(target_channels, file)
        self.input_frames, self.output_frames, self.window_stride = _check_frames(input_frames, output_frames,
                                                                                   window_stride)
        self.window_length = self.input_frames + self.output_frames
        _check_long_enough(file, self.input_frames, self.output_frames)
        self.sequence_indices = np.asarray(sequence_indices, dtype=np.int64).reshape(-1)
        self.windows_per_sequence = (file.num_frames - self.window_length) // self.window_stride + 1
        self.normalization = normalization
        self.channels, self.height, self.width = file.channels, file.height, file.width

    def __len__(self):
        return len(self.sequence_indices) * self.windows_per_sequence

    def _locations(self, indices):
        seq, slot = np.divmod(checked_indices(indices, len(self), "window index"), self.windows_per_sequence)
        return self.sequence_indices[seq], slot * self.window_stride

    def batch(self, indices):
        raw = self.file.read_windows(*self._locations(indices), self.window_length)
        frames = self.normalization.frames(raw)  # (B, L, C, H, W) float32, NaN = no data (with nodata only)
        inputs, _ = fill_no_data(frames[:, :self.input_frames])  # (B, T_in, C, H, W): background where no data
        targets = target_frames(frames[:, self.input_frames:], self.target_channels)  # (B, T_out, C_out, H, W)
        return (np.ascontiguousarray(inputs),  # (B, T_in, C, H, W)
                np.ascontiguousarray(targets))  # (B, T_out, C_out, H, W), NaN = no data

    def describe(self):
        label = f"{self.name}: " if self.name else ""
        return (f"{label}{len(self)} windows ({len(self.sequence_indices)} sequences x "
                f"{self.windows_per_sequence}) of {self.input_frames}+{self.output_frames} frames, stride "
                f"{self.window_stride}, from {self.path}")


def target_frames(frames, channels):
    """frames (B, T, C, H, W) -> (B, T, C_out, H, W): their ``channels`` (the config's target_channels, indices
    into C; empty: all), what the network predicts and is scored on."""
    return frames[:, :, list(channels)] if len(channels) else frames


def checked_target_channels(channels, file):
    """``channels`` (target_channels) as a tuple; DataError unless ``file``'s frames have every one of them."""
    channels = tuple(int(c) for c in channels)
    missing = [c for c in channels if not 0 <= c < file.channels]
    if missing:
        raise DataError(f"{file.path}: target_channels {list(channels)} names channel {missing[0]}, but its frames "
                        f"have {file.channels} channel(s), 0 to {file.channels - 1}; name channels below "
                        f"{file.channels}, or leave target_channels empty (all channels)")
    return channels


def check_tileable(height, width, arch, patch_size):
    """DataError unless H x W frames fit ``arch`` (src.config.untileable), naming the crop and the pad that do."""
    problem = untileable(height, width, arch, patch_size)
    if problem:
        multiple, _ = frame_tiling(arch, patch_size)
        down = f"{height // multiple * multiple}x{width // multiple * multiple}"
        up = f"{-(-height // multiple) * multiple}x{-(-width // multiple) * multiple}"
        other = ", or use a patch_size that divides both" if arch != "zoo" else ""
        raise DataError(f"frames are {problem}; crop the frames to {down} or pad them to {up}{other}")


def split_sequences(num_sequences, split, seed, path="the data"):
    """Deterministic split of sequence indices: {'train': [...], 'val': [...], 'test': [...]} (sorted)."""
    fractions = [float(f) for f in split]
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise DataError(f"split fractions {split!r} must be three numbers > 0 (train, val, test) summing to 1 "
                        "(val_fraction, test_fraction)")
    counts_val, counts_test = (int(math.floor(num_sequences * f + 0.5)) for f in fractions[1:])
    counts = [num_sequences - counts_val - counts_test, counts_val, counts_test]
    if min(counts) < 1:
        given = "/".join(str(c) for c in counts)
        raise DataError(f"{path}: splitting {num_sequences} sequences by {fractions} gives {given} sequences to "
                        "train/val/test; every split needs at least one: use more sequences or change "
                        "val_fraction/test_fraction")
    order = np.random.default_rng(int(seed)).permutation(num_sequences)
    bounds = np.cumsum([0] + counts)
    return {name: sorted(int(i) for i in order[bounds[k]:bounds[k + 1]]) for k, name in enumerate(SPLIT_NAMES)}


def split_file_paths(directory, split):
    """The ``<split>.npy`` and ``<split>.npz`` files present in ``directory``."""
    return [p for p in (os.path.join(directory, split + ext) for ext in _EXTENSIONS) if os.path.isfile(p)]


def _split_files(directory, npz_key, layout):
    candidates = {name: split_file_paths(directory, name) for name in SPLIT_NAMES}
    for name, paths in candidates.items():
        if len(paths) > 1:
            raise DataError(f"{directory} holds both {name}.npy and {name}.npz; keep one file per split")
    found = {name: paths[0] for name, paths in candidates.items() if paths}
    missing = [name for name in SPLIT_NAMES if name not in found]
    if missing:
        present = sorted(f for f in os.listdir(directory) if f.endswith(_EXTENSIONS))
        raise DataError(f"{directory}: no {'/'.join(missing)} file (expected train, val and test .npy or .npz); "
                        f"it holds: {', '.join(present) or 'no .npy/.npz files'}; or point data_path at one "
                        "file to split it by sequence")
    exts = {os.path.splitext(p)[1] for p in found.values()}
    if len(exts) > 1:
        raise DataError(f"{directory}: split files mix {' and '.join(sorted(exts))}; use one kind for all three")
    files = {name: SequenceFile(path, layout, npz_key) for name, path in found.items()}
    ref = files["train"]
    for name in ("val", "test"):
        f = files[name]
        if (f.dtype, f.channels, f.height, f.width) != (ref.dtype, ref.channels, ref.height, ref.width):
            raise DataError(f"{f.path}: {f.channels}x{f.height}x{f.width} {f.dtype} frames, but "
                            f"{ref.path} has {ref.channels}x{ref.height}x{ref.width} {ref.dtype}; all split "
                            "files need the same dtype, channels, height and width")
    return files


class SequenceSplits:
    """The train, val and test :class:`WindowSource` of a file or directory."""

    def __init__(self, sources, normalization, split_record):
        self.sources = dict(sources)
        self.train, self.val, self.test = (self.sources[name] for name in SPLIT_NAMES)
        self.normalization, self.split_record = normalization, split_record
        self.channels, self.height, self.width = self.train.channels, self.train.height, self.train.width
        self.input_frames, self.output_frames = self.train.input_frames, self.train.output_frames

    def __getitem__(self, name):
        if name not in self.sources:
            raise KeyError(f"split {name!r} is not one of {', '.join(SPLIT_NAMES)}")
        return self.sources[name]

    def describe(self):
        n = self.normalization
        lines = [s.describe() for s in self.sources.values()]
        return "\n".join(lines + [f"normalisation: {n.scale}, [{n.data_min:g}, {n.data_max:g}] -> [0, 1]"])


def open_sequences(path, layout, input_frames, output_frames, *, npz_key="", window_stride=0,
                   split=(0.8, 0.1, 0.1), split_seed=0, scale="auto", data_min=None, data_max=None,
                   normalization=None, nodata=(), target_channels=()):
    """Open a file (split by sequence) or a train/val/test directory."""
    path = os.fspath(path)
    _check_frames(input_frames, output_frames, window_stride)
    if not os.path.exists(path):
        raise DataError(f"data_path {path} does not exist; point it at an .npy/.npz file or a directory with "
                        "train, val and test files")
    if os.path.isdir(path):
        files = _split_files(path, npz_key, layout)
        record = {"mode": "directory", "path": path,
                  "files": {name: os.path.basename(f.path) for name, f in files.items()},
                  "num_sequences": {name: f.num_sequences for name, f in files.items()}}
        members = {name: np.arange(f.num_sequences) for name, f in files.items()}
    else:
        single = SequenceFile(path, layout, npz_key)
        files = {name: single for name in SPLIT_NAMES}
        members = split_sequences(single.num_sequences, split, split_seed, path)
        record = {"mode": "file", "path": path, "seed": int(split_seed), "fractions": [float(f) for f in split],
                  "num_sequences": single.num_sequences, **members}
    distinct = list({id(f): f for f in files.values()}.values())
    for f in distinct:  # before the value scan, which reads a float file once
        _check_long_enough(f, int(input_frames), int(output_frames))
    norm = _normalization_for(distinct, scale, data_min, data_max, normalization, nodata)
    record["fingerprint"] = file_fingerprint(files["train"]) if record["mode"] == "file" else \
        {name: file_fingerprint(f) for name, f in files.items()}  # checked by eval.py & co (src.data.split_record)
    sources = {name: WindowSource(files[name], members[name], input_frames, output_frames, window_stride, norm,
                                  name, target_channels) for name in SPLIT_NAMES}
    return SequenceSplits(sources, norm, record)


def open_sequence_file(path, layout, input_frames, output_frames, *, inputs_only=False, npz_key="",
                       window_stride=0, scale="auto", data_min=None, data_max=None, normalization=None, nodata=(),
                       target_channels=()):
    """Every window of every sequence of one file (to evaluate or predict on it), or with ``inputs_only``
    its InputFrames if it holds just ``input_frames`` a sequence."""
    _check_frames(input_frames, output_frames, window_stride)
    file = SequenceFile(path, layout, npz_key)
    _check_long_enough(file, int(input_frames), int(output_frames), inputs_only)
    norm = _normalization_for([file], scale, data_min, data_max, normalization, nodata)
    if inputs_only and file.num_frames == int(input_frames):
        return InputFrames(file, input_frames, norm)
    return WindowSource(file, np.arange(file.num_sequences), input_frames, output_frames, window_stride, norm,
                        os.path.basename(file.path), target_channels)


class InputFrames(BatchSource):
    """A file of exactly ``input_frames`` frames a sequence: ``source[i] -> (inputs (T_in, ...), None)``."""

    def __init__(self, file, input_frames, normalization):
        self.file, self.path, self.normalization = file, file.path, normalization
        self.input_frames = int(input_frames)
        self.channels, self.height, self.width = file.channels, file.height, file.width
        self.sequence_indices = np.arange(file.num_sequences)

    def __len__(self):
        return self.file.num_sequences

    def batch(self, indices):
        seq = checked_indices(indices, len(self), "sequence index")
        raw = self.file.read_windows(seq, np.zeros_like(seq), self.input_frames)  # (B, T_in, C, H, W) file dtype
        return fill_no_data(self.normalization.frames(raw))[0], None  # (B, T_in, C, H, W) float32


def open_input_file(path, layout, input_frames, output_frames, **options):  # a file to predict from
    return open_sequence_file(path, layout, input_frames, output_frames, inputs_only=True, **options)


def layout_shape(layout, num_sequences, frames, channels, height, width):
    _check_layout(layout)
    if "C" not in layout and channels != 1:
        raise DataError(f"data_layout {layout} {_AXES[layout]} holds one channel, but the frames have {channels}; "
                        "use NTCHW or NTHWC")
    size = {"N": num_sequences, "T": frames, "C": channels, "H": height, "W": width}
    return tuple(size[axis] for axis in layout)


def to_layout(frames, layout):
    """(B, T, C, H, W) frames -> the same values in ``layout``'s axis order (inverse of reading)."""
    x = np.asarray(frames)
    layout_shape(layout, *x.shape)
    axes = "NTCHW"
    if "C" not in layout:
        x, axes = x[:, :, 0], "NTHW"
    return x.transpose([axes.index(axis) for axis in layout])


def resolve_test_file(data_path):  # a directory -> its mnist_test_seq.npy; a file -> itself
    if os.path.isdir(data_path):
        path = os.path.join(data_path, TEST_FILE)
        if not os.path.isfile(path):
            raise DataError(f"{TEST_FILE} not found in data_path {data_path}; {_GET}")
        return path
    if not os.path.exists(data_path):
        raise DataError(f"data_path {data_path} does not exist; point it at the directory holding {TEST_FILE} "
                        f"({_GET})")
    return data_path


def _open_test_array(path, num_frames, image_size):
    check_data_file(path, _GET)
    kind, head = array_file_kind(path)
    if kind != "npy":
        what = {"empty": "empty", "npz": "an .npz/zip archive",
                "pickle": "a Python pickle (refused: loading pickles can run code)"}.get(
            kind, f"not an .npy file (starts with {head!r})")
        raise DataError(f"{path} is {what}; expected a uint8 .npy array of shape (20, N, 64, 64); {_FIX}")
    array = load_npy(path, what="uint8 frames", pickled_fix=f"; {_FIX}", fix=f"; {_FIX}", copy="download")
    if array.dtype != np.uint8:
        raise DataError(f"{path}: dtype {array.dtype}, expected uint8 frames of shape (20, N, 64, 64); {_FIX}")
    if array.ndim != 4:
        raise DataError(f"{path}: shape {array.shape}, expected 4 dimensions (T, N, H, W) like (20, 10000, 64, 64); "
                        f"{_FIX}")
    frames, count, height, width = array.shape
    if frames < num_frames:
        raise DataError(f"{path}: sequences have {frames} frames, fewer than input_frames + {_FORECAST} = "
                        f"{num_frames} (layout must be time first: (T, N, H, W))")
    if count == 0:
        raise DataError(f"{path}: holds no sequences (shape {array.shape}); {_FIX}")
    if height != width or (image_size and height != image_size):
        want = f"{image_size}x{image_size}" if image_size else "square"
        raise DataError(f"{path}: frames are {height}x{width}, expected {want} (shape {array.shape}; set "
                        f"image_size to match the file)")
    return array


def open_test_file(path, num_sequences=0, input_frames=10, output_frames=10, image_size=None):
    """mnist_test_seq.npy (checked, with download hints) as a WindowSource of its first ``num_sequences``
    (0 = all) sequences, one window from frame 0 each: ``source[i] -> (inputs (T_in, 1, H, W), targets)``."""
    total = _open_test_array(path, int(input_frames) + int(output_frames), image_size).shape[1]
    if num_sequences < 0 or num_sequences > total:
        raise DataError(f"num_sequences {num_sequences} is more than the {total} sequences in {path}; "
                        f"use 0 (all) or a value <= {total}")
    file = SequenceFile(path, "TNHW")  # (T, N, H, W) uint8, memory-mapped
    return WindowSource(file, np.arange(int(num_sequences) or total), input_frames, output_frames,
                        file.num_frames, make_normalization("uint8"))


def load_user_array(path):
    if not os.path.isfile(path):
        raise DataError(f"input {path} not found (--input expects a .npy file)")
    if array_file_kind(path)[0] not in ("npy", "npz"):  # numpy would try to unpickle anything else
        raise DataError(f"input {path} is not a readable .npy file (no .npy header); save the array with np.save")
    return load_npy(path, name=f"input {path}")


def normalise_user_array(array, name, input_frames=10, image_size=64):
    """(N, T_in, H, W), (T_in, H, W) or (N, T_in, 1, H, W) uint8 or [0, 1] floats -> (N, T_in, 1, H, W)."""
    arr = np.asarray(array)
    t, s = input_frames, image_size
    expected = f"expected (N, {t}, {s}, {s}) or ({t}, {s}, {s})"
    if isinstance(array, np.lib.npyio.NpzFile) or arr.dtype == object:
        raise DataError(f"input {name} is not a numeric array; {expected}")
    if arr.ndim == 5 and arr.shape[2] == 1:
        arr = arr[:, :, 0]  # (N, T, 1, H, W) -> (N, T, H, W)
    if arr.ndim == 3:
        arr = arr[None]  # one sequence
    if arr.ndim != 4 or arr.shape[1:] != (t, s, s) or arr.shape[0] == 0:
        raise DataError(f"input {name} has shape {tuple(np.shape(array))}; {expected}")
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"input {name} has dtype {arr.dtype}; expected uint8 pixels (0..255) or float pixels "
                        "(0..1), e.g. convert with .astype(np.uint8) or divide by 255.0")
    elif not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "infinite"
        raise DataError(f"input {name} contains {bad} values (at {(~np.isfinite(arr)).sum()} of {arr.size} "
                        "pixels); pixels must be finite floats in [0, 1]")
    else:
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -VALUE_TOLERANCE or hi > 1.0 + VALUE_TOLERANCE:
            hint = " (looks like 0..255: divide by 255.0 or pass uint8)" if hi > 1.5 and lo >= 0 else ""
            raise DataError(f"input {name} has float values in [{lo:g}, {hi:g}]; float pixels must lie in "
                            f"[0, 1]{hint}")
        out = np.clip(arr.astype(np.float32), 0.0, 1.0)
    return np.ascontiguousarray(out[:, :, None], dtype=np.float32)  # (N, T_in, 1, H, W)
