"""What every reader of the converter hands the writer: a :class:`Source`, and the small helpers they share
(natural sort order, optional packages, the dtypes the project reads)."""
import importlib
import re
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterator, Tuple

import numpy as np

from src.errors import UserError

REQUIREMENTS_FILE = "requirements-convert.txt"
# the dtypes src/data/sequences.py reads; anything else is written as float32
KEPT_DTYPES = ("uint8", "uint16", "float16", "float32")


@dataclass
class Source:
    """Sequences of equal shape, read one at a time.

    ``blocks(i)`` yields ``(first frame, frames)`` pieces of sequence ``i``, each frames array (t, C, H, W) of
    ``dtype``, covering frames 0..T-1 in order; a piece is at most one sequence, so memory stays bounded.
    ``record`` is what the sidecar says about the source (kind, units, scaling, bit depth ...).
    """

    path: str
    shape: Tuple[int, int, int, int, int]  # (N, T, C, H, W)
    dtype: np.dtype
    blocks: Callable[[int], Iterator[Tuple[int, np.ndarray]]]
    record: dict = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


def natural_key(name):
    """Sort key of a file name with its digit runs compared as numbers: frame2 < frame10, and frame02 ==
    frame2 up to the name itself as tie-breaker. Text is compared without case."""
    parts = re.split(r"(\d+)", name)  # text, digits, text, ...: same kinds at the same positions
    return tuple(int(p) if k % 2 else p.lower() for k, p in enumerate(parts)), name


def natural_sorted(names):
    return sorted(names, key=natural_key)


def require(module, what):
    """Import an optional package, or a UserError naming the requirements file that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        missing = getattr(err, "name", None) or module
        raise UserError(f"{what} needs the Python package '{missing}', which is not installed for {sys.executable}; "
                        f"install it with `python -m pip install -r {REQUIREMENTS_FILE}`") from None


def written_dtype(dtype):
    """The dtype a source of ``dtype`` is written as: kept when the project reads it, float32 otherwise
    (float64 loses precision beyond 7 digits; integers beyond 2**24 would too)."""
    name = np.dtype(dtype).name  # native byte order: NetCDF-3 data are big-endian
    return np.dtype(name) if name in KEPT_DTYPES else np.dtype(np.float32)


def numeric_kind(dtype):
    """True for integer and floating dtypes (not bool, strings, objects, compounds)."""
    return np.dtype(dtype).kind in "uif"
