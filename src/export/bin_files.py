"""Binary files of the Ascend 310 app (raw float32, C order, no header): preprocess.py writes the inputs,
the C++ app (or its CPU stand-in :func:`predict_bin_folder`) one ``<name>_0.bin`` per input for postprocess.py."""
import os

import numpy as np

from src.errors import DataError
from src.io import atomic_path


def write_bin(path, array):
    """Raw float32 in C order, no header: what the C++ app reads into a tensor."""
    data = np.ascontiguousarray(array, dtype=np.float32)
    with atomic_path(path) as tmp:
        data.tofile(tmp)
    return path


def read_bin(path, shape):
    """Read a raw float32 file written by :func:`write_bin` or the C++ app; check its size."""
    if not os.path.isfile(path):
        raise DataError(f"{path} not found")
    expected = int(np.prod(shape)) * 4
    size = os.path.getsize(path)
    if size != expected:
        raise DataError(f"{path} has {size} bytes; expected {expected} (float32 {tuple(shape)})")
    return np.fromfile(path, dtype=np.float32).reshape(shape)


def result_file_name(input_name):
    """Output file the C++ app writes for input ``seq_00000.bin``: ``seq_00000_0.bin`` (output 0)."""
    return os.path.splitext(os.path.basename(input_name))[0] + "_0.bin"


def predict_bin_folder(predictor, input_dir, result_dir):
    """Stand-in for the Ascend 310 app (``predictor``: a BatchPredictor): every input .bin of b whole
    sequences (b, T_in, C, H, W) -> <name>_0.bin. Returns the number of files."""
    names = sorted(n for n in os.listdir(input_dir) if n.endswith(".bin"))
    if not names:
        raise DataError(f"no .bin files in {input_dir}; run preprocess.py first")
    os.makedirs(result_dir, exist_ok=True)
    per_sequence = int(np.prod(predictor.input_shape)) * 4  # bytes of one (T_in, 1, H, W) float32 sequence
    for name in names:
        path = os.path.join(input_dir, name)
        count = max(1, os.path.getsize(path) // per_sequence)
        batch = read_bin(path, (count,) + predictor.input_shape)  # (b, T_in, 1, H, W)
        write_bin(os.path.join(result_dir, result_file_name(name)), predictor.predict(batch))
    return len(names)
