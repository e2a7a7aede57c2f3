"""An HDF5 file's dataset as a :class:`Source` (h5py, requirements-convert.txt).

``dataset`` names an array (see ``arrays``), or a group, or is a pattern (``dataset*/data1/data``): the 2-D
datasets of a group or matching a pattern, in natural order of their paths, are the frames of one sequence, as
ODIM_H5 files keep one scan per ``datasetK``; their ODIM ``what`` attributes apply (gain, offset, nodata, quantity).
"""
import fnmatch

from src.data.convert.arrays import array_blocks, check_layout, listing, output_dtype, read_values, sizes, \
    unpacking_of, units_of
from src.data.convert.source import Source, natural_key, require
from src.errors import DataError, first_line


def _hdf5_datasets(h5py, handle):
    """{path: dataset} of every dataset in the file, in natural order of the paths."""
    found = {}

    def visit(name, obj):  # returns None: a value would stop the visit
        if isinstance(obj, h5py.Dataset):
            found[name] = obj

    handle.visititems(visit)
    return dict(sorted(found.items(), key=lambda item: natural_key(item[0])))


def _describe_datasets(datasets):
    return listing([f"{name} {tuple(d.shape)} {d.dtype}" for name, d in datasets.items()])


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
