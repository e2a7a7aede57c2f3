"""IDX reader: good plain and gzip files, and every kind of broken file as a one-line DataError."""
import gzip
import struct

import numpy as np
import pytest

from src.data.idx import read_idx_images

from tests.data_files import write_idx_images
from src.errors import DataError


def _images(n=5, rows=28, cols=28):
    return np.random.default_rng(0).integers(0, 256, size=(n, rows, cols), dtype=np.uint8)


@pytest.mark.parametrize("name", ["imgs-idx3-ubyte", "imgs-idx3-ubyte.gz"])
def test_round_trip_plain_and_gzip(tmp_path, name):
    images = _images()
    path = write_idx_images(str(tmp_path / name), images)
    back = read_idx_images(path)
    assert back.dtype == np.uint8 and back.shape == (5, 28, 28)
    np.testing.assert_array_equal(back, images)


def test_gzip_detected_by_content_not_name(tmp_path):
    images = _images(rows=7, cols=9)
    plain_named_gz = write_idx_images(str(tmp_path / "x.gz"), images, compress=False)
    gz_named_plain = write_idx_images(str(tmp_path / "x-ubyte"), images, compress=True)
    np.testing.assert_array_equal(read_idx_images(plain_named_gz), images)
    np.testing.assert_array_equal(read_idx_images(gz_named_plain), images)


def test_header_is_big_endian(tmp_path):
    path = write_idx_images(str(tmp_path / "x"), _images(n=3))
    with open(path, "rb") as f:
        assert struct.unpack(">iiii", f.read(16)) == (2051, 3, 28, 28)


def _write_raw(path, header, payload, compress=False):
    data = struct.pack(">" + "i" * len(header), *header) + payload
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)
    return str(path)


@pytest.mark.parametrize("header,payload,fragment", [
    ((2049, 2, 28, 28), bytes(2 * 784), "magic number 2049"),  # a labels file (idx1) magic
    ((0x08030000, 2, 28, 28), bytes(2 * 784), "magic number"),  # little-endian magic
    ((2051, 0, 28, 28), b"", "bad IDX dimensions"),
    ((2051, 2, -28, 28), bytes(2 * 784), "bad IDX dimensions"),
    ((2051, 3, 28, 28), bytes(2 * 784), "truncated"),
    ((2051, 1, 28, 28), bytes(784 + 5), "trailing bytes"),
    ((2051,), b"", "too short"),
])
def test_bad_headers_and_lengths(tmp_path, header, payload, fragment):
    path = _write_raw(tmp_path / "bad-idx3-ubyte", header, payload)
    with pytest.raises(DataError, match=fragment) as err:
        read_idx_images(path)
    message = str(err.value)
    assert path in message and "download.sh" in message and "\n" not in message


def test_truncated_gzip(tmp_path):
    good = write_idx_images(str(tmp_path / "good.gz"), _images(n=50))
    with open(good, "rb") as f:
        data = f.read()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated") as err:
        read_idx_images(str(cut))
    assert str(cut) in str(err.value) and "download.sh" in str(err.value)


def test_corrupt_gzip(tmp_path):
    good = write_idx_images(str(tmp_path / "good.gz"), _images(n=50))
    data = bytearray(open(good, "rb").read())
    data[20:60] = bytes(40)  # clobber the deflate stream
    bad = tmp_path / "bad.gz"
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt gzip|truncated") as err:
        read_idx_images(str(bad))
    assert str(bad) in str(err.value)


def test_missing_file_and_directory(tmp_path):
    missing = str(tmp_path / "train-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="not found") as err:
        read_idx_images(missing)
    assert missing in str(err.value) and "bash download.sh" in str(err.value)
    with pytest.raises(DataError, match="is a directory"):
        read_idx_images(str(tmp_path))


def test_writer_rejects_wrong_input(tmp_path):
    with pytest.raises(ValueError):
        write_idx_images(str(tmp_path / "x"), np.zeros((2, 28, 28), np.float32))
    with pytest.raises(ValueError):
        write_idx_images(str(tmp_path / "x"), np.zeros((28, 28), np.uint8))
