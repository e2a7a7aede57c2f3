"""A NetCDF variable as a :class:`Source`: NetCDF-4 (HDF5-based) files through h5netcdf (requirements-convert.txt),
classic NetCDF-3 files through SciPy (which comes with scikit-image). The array and its CF attributes are read as in
``arrays``.
"""
import warnings

import numpy as np

from src.data.convert.arrays import HDF5_SIGNATURE, array_blocks, attribute_text, check_layout, file_signature, \
    listing, output_dtype, sizes, unpacking_of, units_of
from src.data.convert.source import Source, require
from src.errors import DataError, first_line

NETCDF_CLASSIC = (b"CDF\x01", b"CDF\x02")  # classic and 64-bit offset formats
NETCDF_CDF5 = b"CDF\x05"


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
        self.handle = None
        try:
            self.handle = h5netcdf.File(path, "r")
            self.variables = {name: (var, tuple(var.dimensions), dict(var.attrs))
                              for name, var in self.handle.variables.items()}
        except Exception as err:  # noqa: BLE001 - see _ClassicVariables
            self.close()
            raise DataError(f"{path}: not a readable NetCDF-4 file ({first_line(err)}; corrupt or "
                            "truncated?)") from None

    def close(self):
        if self.handle is not None:
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
    available = listing([f"{n} ({', '.join(dims)})" for n, (_, dims, _) in variables.items()])
    if not name:
        arrays = [n for n, (var, _, _) in variables.items() if len(var.shape) >= 3]
        if len(arrays) == 1:
            return arrays[0]
        raise DataError(f"{path}: holds {len(arrays)} variables of 3 or more dimensions; pass --variable NAME; it "
                        f"holds: {available}")
    if name not in variables:
        raise DataError(f"{path}: no variable '{name}' (--variable); it holds: {available}")
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

