"""mnist_test_seq.npy reader: layout, orientation, slicing and every kind of bad file."""
import pickle

import numpy as np
import pytest

from src.data.test_set import TestSequences, resolve_test_file

from tests.data_files import write_test_file
from src.errors import DataError


def _indexed_sequences(n=6, frames=20, size=64):
    """(N, T, H, W) uint8 where every pixel of frame t of sequence i equals 10*i + t."""
    values = 10 * np.arange(n)[:, None] + np.arange(frames)[None, :]
    return np.broadcast_to(values[:, :, None, None], (n, frames, size, size)).astype(np.uint8)


@pytest.fixture
def test_file(tmp_path):
    return write_test_file(str(tmp_path / "mnist_test_seq.npy"), _indexed_sequences())


def test_written_in_published_layout(test_file):
    raw = np.load(test_file)
    assert raw.shape == (20, 6, 64, 64) and raw.dtype == np.uint8  # time first, then sequence
    assert raw[7, 2, 0, 0] == 27


def test_items_are_input_then_target_frames(test_file):
    """Would catch an input/target swap or a time/sequence transpose: frame t of sequence i holds 10*i + t."""
    source = TestSequences(test_file)
    assert len(source) == 6
    for i in range(6):
        inputs, targets = source[i]
        assert inputs.shape == (10, 1, 64, 64) and targets.shape == (10, 1, 64, 64)
        assert inputs.dtype == np.float32 and targets.dtype == np.float32
        np.testing.assert_allclose(inputs[:, 0, 5, 5] * 255, 10 * i + np.arange(10), atol=1e-4)
        np.testing.assert_allclose(targets[:, 0, 5, 5] * 255, 10 * i + np.arange(10, 20), atol=1e-4)


def test_other_frame_split(test_file):
    inputs, targets = TestSequences(test_file, input_frames=5, output_frames=3)[1]
    assert inputs.shape[0] == 5 and targets.shape[0] == 3
    np.testing.assert_allclose(targets[:, 0, 0, 0] * 255, [15, 16, 17], atol=1e-4)


def test_scaled_to_unit_range(tmp_path):
    seqs = np.zeros((1, 20, 64, 64), np.uint8)
    seqs[0, :, 0, 0] = 255
    source = TestSequences(write_test_file(str(tmp_path / "t.npy"), seqs))
    inputs, targets = source[0]
    assert inputs.max() == 1.0 and inputs.min() == 0.0 and targets.max() == 1.0


def test_num_sequences_keeps_the_first(test_file):
    source = TestSequences(test_file, num_sequences=2)
    assert len(source) == 2
    np.testing.assert_allclose(source[1][0][0, 0, 0, 0] * 255, 10, atol=1e-4)
    with pytest.raises(IndexError):
        source[2]


def test_num_sequences_too_large(test_file):
    with pytest.raises(DataError, match="num_sequences 7 is more than the 6"):
        TestSequences(test_file, num_sequences=7)


def test_image_size_check(tmp_path):
    path = write_test_file(str(tmp_path / "t.npy"), _indexed_sequences(2, size=32))
    assert TestSequences(path, image_size=32).image_size == 32
    with pytest.raises(DataError, match="32x32, expected 64x64"):
        TestSequences(path, image_size=64)


def _assert_one_line_error(path, fragment, **kwargs):
    with pytest.raises(DataError, match=fragment) as err:
        TestSequences(str(path), **kwargs)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_wrong_shapes(tmp_path):
    np.save(tmp_path / "3d.npy", np.zeros((20, 64, 64), np.uint8))
    _assert_one_line_error(tmp_path / "3d.npy", "expected 4 dimensions")
    np.save(tmp_path / "short.npy", np.zeros((12, 3, 64, 64), np.uint8))
    _assert_one_line_error(tmp_path / "short.npy", "12 frames, fewer than")
    np.save(tmp_path / "rect.npy", np.zeros((20, 3, 64, 48), np.uint8))
    _assert_one_line_error(tmp_path / "rect.npy", "64x48")
    np.save(tmp_path / "empty.npy", np.zeros((20, 0, 64, 64), np.uint8))
    _assert_one_line_error(tmp_path / "empty.npy", "no sequences")


def test_wrong_dtype(tmp_path):
    frames = np.zeros((20, 2, 64, 64), np.float32)
    frames[0, 0, 0, 0] = np.nan
    np.save(tmp_path / "float.npy", frames)
    _assert_one_line_error(tmp_path / "float.npy", "dtype float32, expected uint8")


def test_pickled_object_array(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    _assert_one_line_error(tmp_path / "obj.npy", "pickled Python objects")


def test_plain_pickle_and_garbage(tmp_path):
    with open(tmp_path / "p.npy", "wb") as f:
        pickle.dump({"frames": [1, 2]}, f)
    _assert_one_line_error(tmp_path / "p.npy", "Python pickle")
    (tmp_path / "g.npy").write_bytes(b"<html>not found</html>")
    _assert_one_line_error(tmp_path / "g.npy", "not an .npy file")
    (tmp_path / "e.npy").write_bytes(b"")
    _assert_one_line_error(tmp_path / "e.npy", "is empty")
    np.savez(tmp_path / "z.npz", a=np.zeros(3))
    _assert_one_line_error(tmp_path / "z.npz", "npz")


def test_truncated_file(tmp_path, test_file):
    data = open(test_file, "rb").read()
    (tmp_path / "cut.npy").write_bytes(data[: len(data) // 3])
    _assert_one_line_error(tmp_path / "cut.npy", "truncated")


def test_missing_file_and_directory(tmp_path):
    _assert_one_line_error(tmp_path / "nope.npy", "not found")
    _assert_one_line_error(tmp_path, "is a directory")


def test_resolve_test_file(tmp_path, test_file):
    assert resolve_test_file(str(tmp_path)) == test_file
    assert resolve_test_file(test_file) == test_file
    with pytest.raises(DataError, match="download.sh"):
        resolve_test_file(str(tmp_path / "sub"))
    (tmp_path / "sub").mkdir()
    with pytest.raises(DataError, match="mnist_test_seq.npy not found .*download.sh"):
        resolve_test_file(str(tmp_path / "sub"))


def test_writer_rejects_floats(tmp_path):
    with pytest.raises(ValueError):
        write_test_file(str(tmp_path / "x.npy"), np.zeros((1, 20, 64, 64), np.float32))
