"""HDF5 datasets and NetCDF variables as a :class:`Source`.

An array of 3, 4 or 5 dimensions is read as (T, H, W) (one sequence), (N, T, H, W) or (N, T, C, H, W); ``layout``
(e.g. ``TNHW``, ``NTHWC``) names other axis orders. In an HDF5 file, ``dataset`` may also name a group, or be a
pattern (``dataset*/data1/data``): its 2-D datasets, in natural order of their paths, are the frames of one
sequence (as ODIM_H5 files keep one scan per ``datasetK``). Values are unpacked as CF and ODIM say:
``raw * scale_factor + add_offset`` (ODIM: ``gain``, ``offset`` from the ``what`` groups), and raw values equal
to ``_FillValue``, ``missing_value`` (ODIM: ``nodata``) become NaN; an array without such attributes keeps its
dtype when the project reads it (uint8, uint16, float16, float32), anything else is written as float32.

HDF5 is read with h5py, NetCDF-4 with h5netcdf (both in requirements-convert.txt), classic NetCDF-3 with SciPy
(which comes with scikit-image). Reading goes in blocks of whole frames, at most one sequence at a time.
"""
import fnmatch
import os
import warnings
from dataclasses import dataclass

import numpy as np

from src.config import MAX_CHANNELS
from src.data.convert.source import Source, natural_key, numeric_kind, require, written_dtype
from src.errors import DataError, first_line

DEFAULT_LAYOUTS = {3: "THW", 4: "NTHW", 5: "NTCHW"}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
NETCDF_CLASSIC = (b"CDF\x01", b"CDF\x02")  # classic and 64-bit offset formats
NETCDF_CDF5 = b"CDF\x05"
_BLOCK_BYTES = 16 << 20  # raw bytes read at a time (whole frames; at least one frame)
_LISTED = 12  # array names quoted when a name is unknown
_CF_KEYS = ("scale_factor", "add_offset", "_FillValue", "missing_value")
_ODIM_DBZ = ("DBZH", "DBZV", "TH", "TV")  # ODIM quantities in dBZ


def file_signature(path):
    with open(path, "rb") as f:
        return f.read(8)


# ---------------------------------------------------------------- attributes and unpacking

def attribute_text(value):
    """An attribute as str (HDF5/NetCDF give bytes, numpy strings or 1-element arrays), or None."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size == 1 else value.tolist()
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", "replace")
    return str(value)


def attribute_numbers(value):
    """A numeric attribute as a tuple of floats (``missing_value`` may hold several), () when absent."""
    if value is None:
        return ()
    try:
        return tuple(float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError):
        return ()


@dataclass(frozen=True)
class Unpacking:
    """raw -> ``raw * scale + offset``, raw values in ``missing`` -> NaN, cast to ``dtype``."""

    scale: float = 1.0
    offset: float = 0.0
    missing: tuple = ()

    @property
    def changes_values(self):
        return self.scale != 1.0 or self.offset != 0.0 or bool(self.missing)

    def apply(self, raw, dtype):
        if not self.changes_values:
            return raw.astype(dtype, copy=False)
        values = raw.astype(np.float64)
        if self.scale != 1.0:
            values *= self.scale
        if self.offset != 0.0:
            values += self.offset
        if self.missing:
            values[np.isin(raw, np.asarray(self.missing, dtype=np.float64))] = np.nan
        return values.astype(dtype)

    def record(self):
        return {"scale_factor": self.scale, "add_offset": self.offset, "missing_values": list(self.missing)}


def unpacking_of(attrs, odim=None):
    """The :class:`Unpacking` of an array: its CF attributes, else the ODIM ``what`` attributes ``odim``."""
    odim = odim or {}
    if any(key in attrs for key in _CF_KEYS):
        scale, offset = attribute_numbers(attrs.get("scale_factor")), attribute_numbers(attrs.get("add_offset"))
        missing = attribute_numbers(attrs.get("_FillValue")) + attribute_numbers(attrs.get("missing_value"))
    else:
        scale, offset, missing = (attribute_numbers(odim.get(k)) for k in ("gain", "offset", "nodata"))
    return Unpacking(scale[0] if scale else 1.0, offset[0] if offset else 0.0, tuple(dict.fromkeys(missing)))


def units_of(attrs, odim=None):
    """(units, quantity): CF ``units``; for ODIM data its ``quantity`` (dBZ for reflectivity)."""
    quantity = attribute_text((odim or {}).get("quantity"))
    units = attribute_text(attrs.get("units"))
    if units is None and quantity in _ODIM_DBZ:
        units = "dBZ"
    return units, quantity


# ---------------------------------------------------------------- axis orders and blocks

def check_layout(layout, shape, where):
    """The axis order of an array of ``shape`` (given, or the default of its rank), validated."""
    shape = tuple(int(s) for s in shape)
    layout = (layout or DEFAULT_LAYOUTS.get(len(shape), "")).upper()
    if not layout:
        raise DataError(f"{where}: shape {shape} has {len(shape)} dimensions; expected (T, H, W), (N, T, H, W) or "
                        "(N, T, C, H, W), or name the axes with --layout (e.g. --layout TNHW)")
    if set(layout) - set("NTCHW") or len(set(layout)) != len(layout) or not set("THW") <= set(layout):
        raise DataError(f"--layout {layout}: expected each of T, H, W once, N and C at most once (e.g. NTHW, TNHW, "
                        "NTHWC)")
    if len(layout) != len(shape):
        raise DataError(f"{where}: shape {shape} has {len(shape)} dimensions, --layout {layout} names {len(layout)}")
    if "C" in layout and shape[layout.index("C")] > MAX_CHANNELS:
        raise DataError(f"{where}: shape {shape} read as {layout} gives {shape[layout.index('C')]} channels, more "
                        f"than {MAX_CHANNELS}; name the axes with --layout")
    if 0 in shape:
        raise DataError(f"{where}: shape {shape} is empty")
    return layout


def sizes(layout, shape):
    """(N, T, C, H, W) of an array of ``shape`` in axis order ``layout``."""
    size = dict(zip(layout, (int(s) for s in shape)))
    return size.get("N", 1), size["T"], size.get("C", 1), size["H"], size["W"]


def read_values(array, where, name):
    """``array[where]`` as an ndarray; a DataError naming ``name`` when the file cannot deliver it (truncated,
    corrupt chunk)."""
    try:
        return np.asarray(array[where])
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise DataError(f"{name}: cannot be read ({first_line(err)}; corrupt or truncated file?)") from None


def array_blocks(array, layout, unpacking, dtype, name):
    """``blocks(i)`` of an array-like (h5py, h5netcdf, SciPy variable) named ``name``: whole frames of sequence
    ``i``, at most _BLOCK_BYTES of raw values (and at least one frame) at a time, as (t, C, H, W) of ``dtype``."""
    num_frames = sizes(layout, array.shape)[1]
    frame_values = int(np.prod(array.shape)) // (sizes(layout, array.shape)[0] * num_frames)
    step = max(1, _BLOCK_BYTES // (frame_values * np.dtype(array.dtype).itemsize))
    axes = layout.replace("N", "")
    order = [axes.index(a) for a in "TCHW" if a in axes]

    def blocks(index):
        for start in range(0, num_frames, step):
            stop = min(start + step, num_frames)
            where = tuple(index if a == "N" else slice(start, stop) if a == "T" else slice(None) for a in layout)
            block = np.transpose(read_values(array, where, name), order)  # (t, [C,] H, W)
            block = block if "C" in axes else block[:, None]
            yield start, unpacking.apply(block, dtype)

    return blocks


def output_dtype(raw_dtype, unpackings, where):
    if not numeric_kind(raw_dtype):
        raise DataError(f"{where}: {np.dtype(raw_dtype)} values are not numbers; name a numeric array")
    return np.dtype(np.float32) if any(u.changes_values for u in unpackings) else written_dtype(raw_dtype)


def _listing(entries):
    shown = ", ".join(entries[:_LISTED]) + (f", and {len(entries) - _LISTED} more" if len(entries) > _LISTED else "")
    return shown or "nothing"


# ---------------------------------------------------------------- HDF5

def _hdf5_datasets(h5py, handle):
    """{path: dataset} of every dataset in the file, in natural order of the paths."""
    found = {}

    def visit(name, obj):  # returns None: a value would stop the visit
        if isinstance(obj, h5py.Dataset):
            found[name] = obj

    handle.visititems(visit)
    return dict(sorted(found.items(), key=lambda item: natural_key(item[0])))


def _describe_datasets(datasets):
    return _listing([f"{name} {tuple(d.shape)} {d.dtype}" for name, d in datasets.items()])


def _odim_attributes(handle, name):
    """The ODIM ``what`` attributes that apply to dataset ``name``: its group's ``what``, then its parents'
    (inner ones win)."""
    merged, parts = {}, name.strip("/").split("/")[:-1]
    for depth in range(len(parts), -1, -1):
        what = handle.get("/".join(parts[:depth] + ["what"]))
        if what is not None and hasattr(what, "attrs"):
            for key, value in what.attrs.items():
                merged.setdefault(key, value)
    return merged


def _pick_dataset(h5py, handle, path, name):
    """(kind, paths): ("array", [name]) or ("frames", [2-D dataset paths]) for ``name`` (a dataset, group or
    pattern), or the one dataset of >= 3 dimensions when ``name`` is empty."""
    datasets = _hdf5_datasets(h5py, handle)
    if not name:
        arrays = [n for n, d in datasets.items() if d.ndim >= 3]
        if len(arrays) == 1:
            return "array", arrays
        raise DataError(f"{path}: holds {len(arrays)} datasets of 3 or more dimensions; pass --dataset NAME (an array, "
                        f"a group of 2-D frames, or a pattern such as 'dataset*/data1/data'); it holds: "
                        f"{_describe_datasets(datasets)}")
    if any(c in name for c in "*?["):
        frames = [n for n, d in datasets.items() if d.ndim == 2 and fnmatch.fnmatchcase(n, name.strip("/"))]
    else:
        obj = handle.get(name)
        if obj is None:
            raise DataError(f"{path}: no dataset '{name}' (--dataset); it holds: {_describe_datasets(datasets)}")
        if isinstance(obj, h5py.Dataset):
            return "array", [obj.name.strip("/")]
        prefix = obj.name.strip("/")
        frames = [n for n, d in datasets.items() if d.ndim == 2 and (not prefix or n.startswith(prefix + "/"))]
    if not frames:
        raise DataError(f"{path}: '{name}' holds no 2-D datasets (frames); it holds: {_describe_datasets(datasets)}")
    return "frames", frames


def _hdf5_array_source(handle, path, name, layout):
    dataset = handle[name]
    where = f"{path}, dataset {name}"
    layout = check_layout(layout, dataset.shape, where)
    odim = _odim_attributes(handle, name)
    unpacking = unpacking_of(dataset.attrs, odim)
    dtype = output_dtype(dataset.dtype, [unpacking], where)
    units, quantity = units_of(dataset.attrs, odim)
    record = {"kind": "HDF5", "dataset": name, "source_shape": list(dataset.shape), "source_layout": layout,
              "bit_depth": dataset.dtype.itemsize * 8,
              "source_dtype": dataset.dtype.name, "units": units, "quantity": quantity, **unpacking.record()}
    blocks = array_blocks(dataset, layout, unpacking, dtype, where)
    return Source(path, sizes(layout, dataset.shape), dtype, blocks, record, handle.close)


def _hdf5_frames_source(handle, path, name, frames):
    first = handle[frames[0]]
    for frame in frames:
        d = handle[frame]
        if (d.shape, d.dtype) != (first.shape, first.dtype):
            raise DataError(f"{path}: dataset {frame} is {tuple(d.shape)} {d.dtype}, but {frames[0]} is "
                            f"{tuple(first.shape)} {first.dtype}; the frames of '{name}' need one shape and dtype")
    odims = [_odim_attributes(handle, f) for f in frames]
    quantities = {units_of(handle[f].attrs, o)[1] for f, o in zip(frames, odims)}
    if len(quantities) > 1:
        mixed = ", ".join(sorted(map(str, quantities)))
        raise DataError(f"{path}: the 2-D datasets of '{name}' mix the quantities {mixed}; name a pattern that "
                        "matches one of them (e.g. --dataset 'dataset*/data1/data')")
    unpackings = [unpacking_of(handle[f].attrs, o) for f, o in zip(frames, odims)]
    dtype = output_dtype(first.dtype, unpackings, f"{path}, dataset {frames[0]}")

    def blocks(index):
        for t, (frame, unpacking) in enumerate(zip(frames, unpackings)):
            yield t, unpacking.apply(read_values(handle, frame, f"{path}, dataset {frame}")[None, None], dtype)

    units, quantity = units_of(first.attrs, odims[0])
    distinct = list(dict.fromkeys(unpackings))
    record = {"kind": "HDF5 frames", "dataset": name, "frames": frames, "source_dtype": first.dtype.name,
              "bit_depth": first.dtype.itemsize * 8, "units": units, "quantity": quantity, **distinct[0].record()}
    if len(distinct) > 1:
        record["unpacking_per_frame"] = [u.record() for u in unpackings]
    return Source(path, (1, len(frames), 1) + tuple(first.shape), dtype, blocks, record, handle.close)


def open_hdf5(path, dataset="", layout=""):
    """The :class:`Source` of an HDF5 file's dataset (array, group of 2-D frames, or pattern)."""
    h5py = require("h5py", "reading HDF5 files")
    try:
        handle = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable HDF5 file ({first_line(err)}; corrupt or truncated?)") from None
    try:
        kind, names = _pick_dataset(h5py, handle, path, dataset)
        if kind == "array":
            return _hdf5_array_source(handle, path, names[0], layout)
        if layout:
            raise DataError(f"--layout {layout}: '{dataset}' is a set of 2-D frames of one sequence, not one array")
        return _hdf5_frames_source(handle, path, dataset, names)
    except BaseException:
        handle.close()
        raise


# ---------------------------------------------------------------- NetCDF

class _ClassicVariables:
    """Classic NetCDF-3 variables through SciPy: {name: (array-like, dimensions, attributes)}."""

    def __init__(self, path):
        scipy_io = require("scipy.io", "reading classic NetCDF files")
        try:
            self.handle = scipy_io.netcdf_file(path, "r", mmap=True, maskandscale=False)
        except Exception as err:  # noqa: BLE001 - a parser of arbitrary bytes: any failure means an unreadable file
            raise DataError(f"{path}: not a readable NetCDF file ({first_line(err)}; corrupt or truncated?)") from None
        # var.data: the memory-mapped array (shape, dtype, slicing); var._attributes: SciPy's attribute table
        self.variables = {name: (var.data, tuple(var.dimensions), dict(var._attributes))
                          for name, var in self.handle.variables.items()}

    def close(self):
        self.variables = {}
        with warnings.catch_warnings():  # SciPy warns while memory-mapped arrays are still referenced
            warnings.simplefilter("ignore", RuntimeWarning)
            self.handle.close()


class _Netcdf4Variables:
    """NetCDF-4 (HDF5-based) variables through h5netcdf: {name: (array-like, dimensions, attributes)}."""

    def __init__(self, path):
        h5netcdf = require("h5netcdf", "reading NetCDF-4 files")
        try:
            self.handle = h5netcdf.File(path, "r")
            self.variables = {name: (var, tuple(var.dimensions), dict(var.attrs))
                              for name, var in self.handle.variables.items()}
        except Exception as err:  # noqa: BLE001 - see _ClassicVariables
            raise DataError(f"{path}: not a readable NetCDF-4 file ({first_line(err)})") from None

    def close(self):
        self.handle.close()


def _netcdf_variables(path):
    signature = file_signature(path)
    if signature.startswith(NETCDF_CDF5):
        raise DataError(f"{path}: NetCDF CDF-5 (64-bit data) is not read here; convert it to NetCDF-4 first "
                        "(`nccopy -k nc4 IN OUT`)")
    if signature.startswith(NETCDF_CLASSIC):
        return _ClassicVariables(path)
    if signature.startswith(HDF5_SIGNATURE):
        return _Netcdf4Variables(path)
    raise DataError(f"{path}: not a NetCDF file (it starts with {signature!r})")


def _pick_variable(path, variables, name):
    listing = _listing([f"{n} ({', '.join(dims)})" for n, (_, dims, _) in variables.items()])
    if not name:
        arrays = [n for n, (var, _, _) in variables.items() if len(var.shape) >= 3]
        if len(arrays) == 1:
            return arrays[0]
        raise DataError(f"{path}: holds {len(arrays)} variables of 3 or more dimensions; pass --variable NAME; it "
                        f"holds: {listing}")
    if name not in variables:
        raise DataError(f"{path}: no variable '{name}' (--variable); it holds: {listing}")
    return name


def open_netcdf(path, variable="", layout=""):
    """The :class:`Source` of a NetCDF variable (classic or NetCDF-4)."""
    reader = _netcdf_variables(path)
    try:
        name = _pick_variable(path, reader.variables, variable)
        var, dims, attrs = reader.variables[name]
        where = f"{path}, variable {name} ({', '.join(dims)})"
        layout = check_layout(layout, var.shape, where)
        unpacking = unpacking_of(attrs)
        dtype = output_dtype(var.dtype, [unpacking], where)
        units, _ = units_of(attrs)
        record = {"kind": "NetCDF", "variable": name, "dimensions": list(dims), "source_shape": list(var.shape),
                  "source_layout": layout, "source_dtype": np.dtype(var.dtype).name, "units": units,
                  "bit_depth": np.dtype(var.dtype).itemsize * 8,
                  "long_name": attribute_text(attrs.get("long_name")), **unpacking.record()}
        blocks = array_blocks(var, layout, unpacking, dtype, where)
        return Source(path, sizes(layout, var.shape), dtype, blocks, record, reader.close)
    except BaseException:
        reader.close()
        raise


def is_netcdf_name(path):
    return os.path.splitext(path)[1].lower() in (".nc", ".nc4", ".cdf", ".netcdf")
