"""src/user_arrays.py: a user's .npy for predict.py, normalised or refused in one line."""
import numpy as np
import pytest

from src.errors import DataError


@pytest.mark.parametrize("array, fragment", [
    (np.full((10, 64, 64), np.nan, dtype=np.float32), "NaN"),
    (np.full((2, 10, 64, 64), 1.5, dtype=np.float64), "must lie in [0, 1]"),
    (np.full((10, 64, 64), 200.0, dtype=np.float32), "divide by 255"),
    (np.zeros((10, 64, 64), dtype=np.int64), "dtype int64"),
    (np.zeros((2, 10, 32, 32), dtype=np.uint8), "shape (2, 10, 32, 32)"),
    (np.zeros((0, 10, 64, 64), dtype=np.uint8), "shape (0, 10, 64, 64)"),
])
def test_user_arrays_with_bad_values_are_refused(array, fragment):
    from src.user_arrays import normalise_user_array

    with pytest.raises(DataError) as err:
        normalise_user_array(array, "x.npy")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_user_arrays_are_normalised():
    from src.user_arrays import normalise_user_array

    u8 = np.arange(10 * 64 * 64, dtype=np.int64).reshape(10, 64, 64) % 256
    as_uint8 = normalise_user_array(u8.astype(np.uint8), "a")
    as_float = normalise_user_array(u8.astype(np.float64) / 255.0, "b")
    as_5d = normalise_user_array((u8.astype(np.float32) / 255.0)[None, :, None], "c")
    assert as_uint8.shape == (1, 10, 1, 64, 64) and as_uint8.dtype == np.float32
    assert as_uint8.max() == 1.0 and as_uint8.min() == 0.0
    np.testing.assert_allclose(as_float, as_uint8, atol=1e-7)
    np.testing.assert_allclose(as_5d, as_uint8, atol=1e-7)


def test_unreadable_files_are_refused_in_one_line(tmp_path):
    from src.user_arrays import load_user_array

    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "text.npy").write_text("not an array")
    for path, fragment in ((tmp_path / "missing.npy", "not found"), (objects, "Python objects"),
                           (tmp_path / "text.npy", "not a readable .npy")):
        with pytest.raises(DataError, match=fragment) as err:
            load_user_array(str(path))
        assert "\n" not in str(err.value)
