"""Real files -> the (N, T, C, H, W) ``.npy`` that ``--dataset sequences`` reads (data_layout NTCHW).

Sources: a folder of image frames (``images``), an HDF5 dataset (``hdf5``) or a NetCDF variable (``netcdf``), the
last two sharing ``arrays``. Each becomes a :class:`~src.data.convert.source.Source` that yields one sequence at a
time; ``writer`` streams it into a memory-mapped temporary file beside the output and renames it into place, with
a JSON sidecar recording the source, units, scaling, value range and the train.py options.
``python -m src.data.convert`` is the command line.
"""
import os

from src.data.convert.arrays import HDF5_SIGNATURE, file_signature, is_netcdf_name
from src.data.convert.hdf5 import open_hdf5
from src.data.convert.images import IMAGE_EXTENSIONS, open_image_folder
from src.data.convert.netcdf import NETCDF_CDF5, NETCDF_CLASSIC, open_netcdf
from src.errors import DataError, UserError


def source_kind(path, dataset="", variable=""):
    """"images", "hdf5" or "netcdf": a folder holds frames; ``--variable`` (or a NetCDF signature or name) means
    NetCDF, ``--dataset`` (or an HDF5 signature) HDF5. A NetCDF-4 file is an HDF5 file: either option reads it."""
    if dataset and variable:
        raise UserError("--dataset (HDF5) and --variable (NetCDF) both given; give the one that fits the file")
    if not os.path.exists(path):
        raise DataError(f"{path} not found; SOURCE is a folder of image frames, an HDF5 or a NetCDF file")
    if os.path.isdir(path):
        if dataset or variable:
            raise UserError(f"{path} is a folder of image frames; --dataset/--variable name arrays of HDF5/NetCDF "
                            "files")
        return "images"
    try:
        signature = file_signature(path)
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror or err})") from None
    if variable or signature.startswith(NETCDF_CLASSIC + (NETCDF_CDF5,)):
        return "netcdf"
    if dataset or signature.startswith(HDF5_SIGNATURE):
        return "netcdf" if is_netcdf_name(path) and not dataset else "hdf5"
    if path.lower().endswith(IMAGE_EXTENSIONS):
        raise DataError(f"{path} is one image; SOURCE is a folder with one sub-folder of frames per sequence")
    raise DataError(f"{path}: neither a folder of image frames nor an HDF5 or NetCDF file (it starts with "
                    f"{signature!r})")


def open_source(path, dataset="", variable="", layout="", grey=False):
    """The :class:`~src.data.convert.source.Source` of ``path`` (see :func:`source_kind`)."""
    kind = source_kind(path, dataset, variable)
    if kind != "images" and grey:
        raise UserError("--grey applies to colour image frames, not to HDF5/NetCDF arrays")
    if kind == "images":
        if layout:
            raise UserError("--layout names the axes of HDF5/NetCDF arrays; image frames need none")
        return open_image_folder(path, grey=grey)
    if kind == "netcdf":
        return open_netcdf(path, variable, layout)
    return open_hdf5(path, dataset, layout)
