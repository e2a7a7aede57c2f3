"""What HDF5 datasets and NetCDF variables share on their way to a :class:`Source`: file signatures, CF and ODIM
attributes and their unpacking, axis orders, and reading in blocks of whole frames.

An array of 3, 4 or 5 dimensions is read as (T, H, W) (one sequence), (N, T, H, W) or (N, T, C, H, W); ``layout``
(e.g. ``TNHW``, ``NTHWC``) names other axis orders. Values are unpacked as CF and ODIM say: ``raw * scale_factor +
add_offset`` (ODIM: ``gain``, ``offset`` from the ``what`` groups), and raw values equal to ``_FillValue``,
``missing_value`` (ODIM: ``nodata``) become NaN; an array without such attributes keeps its dtype when the project
reads it (uint8, uint16, float16, float32), anything else is written as float32. Reading goes in blocks of whole
frames, at most one sequence at a time.
"""
import os
from dataclasses import dataclass

import numpy as np

from src.config import MAX_CHANNELS
from src.data.convert.source import numeric_kind, written_dtype
from src.errors import DataError, first_line

DEFAULT_LAYOUTS = {3: "THW", 4: "NTHW", 5: "NTCHW"}
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
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


def listing(entries):
    shown = ", ".join(entries[:_LISTED]) + (f", and {len(entries) - _LISTED} more" if len(entries) > _LISTED else "")
    return shown or "nothing"


def is_netcdf_name(path):
    return os.path.splitext(path)[1].lower() in (".nc", ".nc4", ".cdf", ".netcdf")
