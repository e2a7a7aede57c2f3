"""Reader of IDX image files such as ``train-images-idx3-ubyte.gz``: a big-endian int32 magic (2051),
sizes (count, rows, cols), then the pixel bytes. Gzip is recognised from the content, not the name,
because some servers transparently decompress ``.gz`` downloads.
"""
import gzip
import os
import struct
import zlib

import numpy as np

from src.errors import DataError

IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte data, 3 dimensions
_HEADER = struct.Struct(">iiii")
_GZIP_MAGIC = b"\x1f\x8b"
_FIX = "re-run `bash download.sh DATA_DIR` or copy a good copy of the file there"


def array_file_kind(path):
    """("npy" | "npz" | "empty" | "pickle" | "other", the first bytes of ``path``)."""
    with open(path, "rb") as f:
        head = f.read(6)
    if head == b"\x93NUMPY":
        return "npy", head
    if head.startswith(b"PK"):  # a zip: .npz
        return "npz", head
    if not head:
        return "empty", head
    return ("pickle" if head[:1] == b"\x80" else "other"), head


def check_data_file(path, how_to_get="run `bash download.sh DATA_DIR` to fetch it"):
    if os.path.isdir(path):
        raise DataError(f"{path} is a directory, expected a file; {how_to_get}")
    if not os.path.isfile(path):
        raise DataError(f"data file {path} not found; {how_to_get}")


def read_idx_images(path):
    """IDX image file (plain or gzip) -> (N, rows, cols) uint8, read-only, header validated."""
    check_data_file(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        data = gzip.decompress(data) if data.startswith(_GZIP_MAGIC) else data
    except EOFError:
        raise DataError(f"{path}: gzip stream is truncated (incomplete download?); {_FIX}") from None
    except (OSError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{path}: corrupt gzip data ({err}); {_FIX}") from None
    if len(data) < _HEADER.size:
        raise DataError(f"{path}: {len(data)} bytes is too short for an IDX header (16 bytes); {_FIX}")
    magic, count, rows, cols = _HEADER.unpack_from(data)
    if magic != IDX_IMAGES_MAGIC:
        raise DataError(f"{path}: magic number {magic} is not {IDX_IMAGES_MAGIC} (3-D unsigned-byte IDX images): "
                        f"not an MNIST image file; {_FIX}")
    if count <= 0 or rows <= 0 or cols <= 0:
        raise DataError(f"{path}: bad IDX dimensions count={count} rows={rows} cols={cols}; {_FIX}")
    expected, got = count * rows * cols, len(data) - _HEADER.size
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise DataError(f"{path}: pixel data {what}: header says {count}x{rows}x{cols} = {expected} bytes, "
                        f"file holds {got}; {_FIX}")
    pixels = np.frombuffer(data, dtype=np.uint8, count=expected, offset=_HEADER.size)
    return pixels.reshape(count, rows, cols)  # (N, rows, cols)
