"""Sequences a user hands to predict.py: read their .npy and turn it into network input, or
explain in one line why it cannot be.

Accepted: (N, T_in, H, W), (T_in, H, W) or (N, T_in, 1, H, W); uint8 pixels 0..255 or float
pixels 0..1 (finite; values may exceed [0, 1] by rounding only).
"""
import os

import numpy as np

from src.errors import DataError, first_line

VALUE_TOLERANCE = 1e-4  # floats may exceed [0, 1] by rounding only
NPY_MAGIC = b"\x93NUMPY"  # first bytes of a .npy file (.npz files are zip archives: "PK")


def load_user_array(path):
    """Read a user's .npy (no pickles) or explain in one line why not."""
    if not os.path.isfile(path):
        raise DataError(f"input {path} not found (--input expects a .npy file)")
    with open(path, "rb") as f:
        magic = f.read(len(NPY_MAGIC))
    if magic != NPY_MAGIC and not magic.startswith(b"PK"):  # numpy would try to unpickle anything else
        raise DataError(f"input {path} is not a readable .npy file (no .npy header); save the array with np.save")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower() or "object" in str(err).lower():
            raise DataError(f"input {path} holds Python objects; save a numeric array with np.save") from None
        raise DataError(f"input {path} is not a readable .npy file ({first_line(err)})") from None
    except (OSError, EOFError) as err:
        raise DataError(f"input {path} is not a readable .npy file ({first_line(err)})") from None


def normalise_user_array(array, name, input_frames=10, image_size=64):
    """A user's sequences -> network input (N, T_in, 1, H, W) float32 in [0, 1].

    Anything but the accepted layouts and dtypes (module docstring) raises DataError naming ``name``.
    """
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
    elif np.issubdtype(arr.dtype, np.floating):
        out = _checked_floats(arr, name)
    else:
        raise DataError(f"input {name} has dtype {arr.dtype}; expected uint8 pixels (0..255) or float pixels "
                        "(0..1), e.g. convert with .astype(np.uint8) or divide by 255.0")
    return np.ascontiguousarray(out[:, :, None], dtype=np.float32)  # (N, T_in, 1, H, W)


def _checked_floats(arr, name):
    finite = np.isfinite(arr)
    if not finite.all():
        bad = "NaN" if np.isnan(arr).any() else "infinite"
        raise DataError(f"input {name} contains {bad} values (at {int((~finite).sum())} of {arr.size} pixels); "
                        "pixels must be finite floats in [0, 1]")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -VALUE_TOLERANCE or hi > 1.0 + VALUE_TOLERANCE:
        hint = " (looks like 0..255: divide by 255.0 or pass uint8)" if hi > 1.5 and lo >= 0 else ""
        raise DataError(f"input {name} has float values in [{lo:g}, {hi:g}]; float pixels must lie in [0, 1]{hint}")
    return np.clip(arr.astype(np.float32), 0.0, 1.0)
