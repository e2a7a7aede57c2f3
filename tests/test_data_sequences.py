"""src/data/sequences.py: users' own sequence arrays (layouts, windows, splits, normalisation), the
mnist_test_seq.npy reader, predict.py's --input arrays, and every bad input."""
import json
import pickle

import numpy as np
import pytest

from src.data import sequences
from src.data.sequences import (LAYOUTS, Normalization, SequenceFile, check_tileable,
                                make_normalization, open_sequence_file, open_sequences, split_sequences)
from src.data.sequences import (load_user_array, open_test_file, normalise_user_array,
                                resolve_test_file)
from src.errors import DataError
from tests.data_files import data_error_message, window_location, write_test_file


def _indexed(n=4, t=12, c=1, h=8, w=8):
    """(N, T, C, H, W) uint8 where every value encodes its own n, t, c, h and w (distinct per axis)."""
    n_, t_, c_, h_, w_ = np.meshgrid(*(np.arange(s) for s in (n, t, c, h, w)), indexing="ij")
    return ((n_ * 50 + t_ * 4 + c_ * 2 + h_ * 3 + w_) % 256).astype(np.uint8)


def _in_layout(ntchw, layout):
    """Store an (N, T, C, H, W) array in ``layout``."""
    if layout == "NTCHW":
        return ntchw
    if layout == "NTHWC":
        return np.ascontiguousarray(np.moveaxis(ntchw, 2, -1))
    single = ntchw[:, :, 0]  # (N, T, H, W)
    return single if layout == "NTHW" else np.ascontiguousarray(single.transpose(1, 0, 2, 3))


def _save(tmp_path, name, array):
    path = str(tmp_path / name)
    np.save(path, array, allow_pickle=False)
    return path


_error = data_error_message


# ---------------------------------------------------------------- layouts and reading

@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_reads_the_same_frames(tmp_path, layout):
    """Would catch a swapped N/T axis or a channel axis moved to the wrong place."""
    channels = 3 if layout in ("NTCHW", "NTHWC") else 1
    data = _indexed(c=channels, h=8, w=6)  # non-square catches an H/W swap
    path = _save(tmp_path, "d.npy", _in_layout(data, layout))
    source = open_sequence_file(path, layout, 3, 2)
    assert (source.channels, source.height, source.width) == (channels, 8, 6)
    assert len(source) == 4 * 2  # 12 frames -> 2 windows of 5 per sequence
    for i in range(len(source)):
        inputs, targets = source[i]
        seq, start = window_location(source, i)
        expected = data[seq, start:start + 5].astype(np.float32) / 255.0  # (5, C, H, W)
        assert inputs.shape == (3, channels, 8, 6) and targets.shape == (2, channels, 8, 6)
        assert inputs.dtype == np.float32 and targets.dtype == np.float32
        np.testing.assert_array_equal(inputs, expected[:3])
        np.testing.assert_array_equal(targets, expected[3:])


def test_npy_is_memory_mapped_and_batches_are_plain_arrays(tmp_path):
    path = _save(tmp_path, "d.npy", _indexed())
    source = open_sequence_file(path, "NTCHW", 3, 2)
    assert isinstance(source.file._array, np.memmap)
    inputs, _ = source.batch([0, 1])
    assert not isinstance(inputs, np.memmap) and inputs.flags.c_contiguous


def test_batch_equals_stacked_items(tmp_path):
    data = np.moveaxis(_indexed(c=2), 2, -1)  # NTHWC: the batch path must move the channel axis too
    source = open_sequence_file(_save(tmp_path, "d.npy", data), "NTHWC", 4, 1, window_stride=3)
    picks = [5, 0, 7, 7, 2]
    inputs, targets = source.batch(picks)
    assert inputs.shape == (5, 4, 2, 8, 8) and targets.shape == (5, 1, 2, 8, 8)
    for b, i in enumerate(picks):
        np.testing.assert_array_equal(inputs[b], source[i][0])
        np.testing.assert_array_equal(targets[b], source[i][1])
    with pytest.raises(IndexError):
        source.batch([len(source)])
    with pytest.raises(IndexError):
        source[-1]


def test_windows_follow_the_stride(tmp_path):
    data = np.broadcast_to(np.arange(12, dtype=np.uint8)[None, :, None, None], (2, 12, 4, 4)).copy()  # value = t
    path = _save(tmp_path, "d.npy", data)
    default = open_sequence_file(path, "NTHW", 3, 2)  # stride 5: starts 0, 5
    assert default.windows_per_sequence == 2 and default.window_stride == 5
    overlapping = open_sequence_file(path, "NTHW", 3, 2, window_stride=3)  # starts 0, 3, 6
    starts = [overlapping[i][0][0, 0, 0, 0] * 255 for i in range(3)]
    np.testing.assert_allclose(starts, [0, 3, 6], atol=1e-4)
    np.testing.assert_allclose(overlapping[2][1][:, 0, 0, 0] * 255, [9, 10], atol=1e-4)
    assert window_location(overlapping, 4) == (1, 3)


def test_output_longer_than_input_is_allowed(tmp_path):
    source = open_sequence_file(_save(tmp_path, "d.npy", _indexed()[:, :, 0]), "NTHW", 2, 9)
    inputs, targets = source[0]
    assert inputs.shape[0] == 2 and targets.shape[0] == 9


def test_single_array_npz_needs_no_key_and_keys_choose(tmp_path):
    data = _indexed()
    single = str(tmp_path / "one.npz")
    np.savez(single, frames=data)
    np.testing.assert_array_equal(open_sequence_file(single, "NTCHW", 3, 2)[1][0],
                                  data[0, 5:8].astype(np.float32) / 255.0)
    several = str(tmp_path / "two.npz")
    np.savez(several, other=np.zeros((1, 12, 1, 8, 8), np.uint8), frames=data)
    np.testing.assert_array_equal(open_sequence_file(several, "NTCHW", 3, 2, npz_key="frames")[1][0],
                                  open_sequence_file(single, "NTCHW", 3, 2)[1][0])


# ---------------------------------------------------------------- mnist_test_seq.npy

def test_tnhw_matches_the_moving_mnist_test_reader(tmp_path):
    """The generic reader gives exactly the dedicated reader's (inputs, targets) for each sequence."""
    sequences = np.random.default_rng(3).integers(0, 256, (6, 20, 16, 16), dtype=np.uint8)
    path = write_test_file(str(tmp_path / "mnist_test_seq.npy"), sequences)
    reference = open_test_file(path, image_size=16)
    generic = open_sequence_file(path, "TNHW", 10, 10)
    assert len(generic) == len(reference) == 6
    for i in range(6):
        for got, want in zip(generic[i], reference[i]):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got, want)
    splits = open_sequences(path, "TNHW", 10, 10, split=(0.5, 0.25, 0.25), split_seed=1)
    for j, seq in enumerate(splits.split_record["test"]):
        np.testing.assert_array_equal(splits.test[j][1], reference[seq][1])


# ---------------------------------------------------------------- splits

def test_one_file_is_split_by_sequence_deterministically(tmp_path):
    path = _save(tmp_path, "d.npy", _indexed(n=20, t=10)[:, :, 0])
    a = open_sequences(path, "NTHW", 3, 2, split=(0.8, 0.1, 0.1), split_seed=7)
    b = open_sequences(path, "NTHW", 3, 2, split=(0.8, 0.1, 0.1), split_seed=7)
    c = open_sequences(path, "NTHW", 3, 2, split=(0.8, 0.1, 0.1), split_seed=8)
    record = a.split_record
    assert record == b.split_record and record != c.split_record
    assert json.loads(json.dumps(record)) == record
    assert [len(record[s]) for s in ("train", "val", "test")] == [16, 2, 2]
    assert sorted(record["train"] + record["val"] + record["test"]) == list(range(20))
    assert record["train"] != list(range(16))  # shuffled, not the first 16
    for name in ("train", "val", "test"):
        source = a[name]
        assert len(source) == len(record[name]) * 2
        # every window of a split comes from that split's sequences (split by sequence, not by window)
        assert {window_location(source, i)[0] for i in range(len(source))} == set(record[name])


def test_split_sizes_and_zero_sequence_splits():
    assert [len(v) for v in split_sequences(10, (0.6, 0.2, 0.2), 0).values()] == [6, 2, 2]
    message = _error(split_sequences, 4, (0.8, 0.1, 0.1), 0, "d.npy")
    assert "d.npy" in message and "4/0/0" in message
    assert "summing to 1" in _error(split_sequences, 10, (0.8, 0.1, 0.2), 0)
    assert "> 0" in _error(split_sequences, 10, (0.9, 0.1, 0.0), 0)


def _write_split_dir(tmp_path, sizes=(5, 2, 3), frames=(10, 12, 10), ext=".npy"):
    directory = tmp_path / "splits"
    directory.mkdir()
    for name, n, t in zip(("train", "val", "test"), sizes, frames):
        data = _indexed(n=n, t=t)
        if ext == ".npy":
            np.save(str(directory / f"{name}.npy"), data)
        else:
            np.savez(str(directory / f"{name}.npz"), frames=data)
    return directory


@pytest.mark.parametrize("ext", [".npy", ".npz"])
def test_directory_files_are_the_splits(tmp_path, ext):
    directory = _write_split_dir(tmp_path, ext=ext)
    splits = open_sequences(str(directory), "NTCHW", 3, 2)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [5 * 2, 2 * 2, 3 * 2]
    assert splits.split_record["mode"] == "directory"
    assert splits.split_record["num_sequences"] == {"train": 5, "val": 2, "test": 3}
    np.testing.assert_array_equal(splits.val[1][0], _indexed(n=2, t=12)[0, 5:8].astype(np.float32) / 255)
    assert "val" in splits.describe()


def test_directory_errors(tmp_path):
    directory = _write_split_dir(tmp_path)
    (directory / "val.npy").unlink()
    message = _error(open_sequences, str(directory), "NTCHW", 3, 2)
    assert "no val file" in message and "train.npy" in message
    np.savez(str(directory / "val.npz"), frames=_indexed(n=2))
    assert "mix" in _error(open_sequences, str(directory), "NTCHW", 3, 2)
    (directory / "val.npz").unlink()
    np.save(str(directory / "val.npy"), _indexed(n=2, h=6))
    message = _error(open_sequences, str(directory), "NTCHW", 3, 2)
    assert "1x6x8" in message and "1x8x8" in message
    np.save(str(directory / "val.npy"), _indexed(n=2))
    np.savez(str(directory / "test.npz"), frames=_indexed(n=2))
    assert "both test.npy and test.npz" in _error(open_sequences, str(directory), "NTCHW", 3, 2)


# ---------------------------------------------------------------- normalisation

def test_auto_divides_integers_by_the_dtype_max(tmp_path):
    data16 = np.full((2, 5, 4, 4), 65535, np.uint16)
    data16[0, 0, 0, 0] = 13107  # 0.2
    source = open_sequence_file(_save(tmp_path, "u16.npy", data16), "NTHW", 3, 2)
    assert source.normalization.to_dict() == {"scale": "auto", "data_min": 0.0, "data_max": 65535.0,
                                              "dtype": "uint16"}
    inputs, targets = source[0]
    assert inputs[0, 0, 0, 0] == pytest.approx(0.2) and targets.min() == 1.0


def test_float_auto_passes_unit_data_and_float16_is_read(tmp_path):
    data = np.linspace(0, 1, 2 * 5 * 4 * 4, dtype=np.float16).reshape(2, 5, 4, 4)
    inputs, targets = open_sequence_file(_save(tmp_path, "f16.npy", data), "NTHW", 3, 2)[1]
    assert inputs.dtype == np.float32
    np.testing.assert_array_equal(targets[:, 0], data[1, 3:].astype(np.float32))


def test_float_auto_outside_unit_range_asks_for_minmax(tmp_path):
    data = np.zeros((2, 5, 4, 4), np.float32)
    data[1, 2, 3, 1] = 42.5
    message = _error(open_sequence_file, _save(tmp_path, "f.npy", data), "NTHW", 3, 2)
    assert "[0, 42.5]" in message and "minmax" in message


def test_minmax_clips_and_inverts_to_user_units(tmp_path):
    dbz = np.array([-30.0, -10.0, 25.0, 60.0, 75.0], np.float32)
    data = np.broadcast_to(dbz[None, :, None, None], (3, 5, 2, 2)).copy()  # frame t holds dbz[t]
    splits = open_sequences(_save(tmp_path, "dbz.npy", data), "NTHW", 2, 3, split=(1 / 3, 1 / 3, 1 / 3),
                            scale="minmax", data_min=-10, data_max=60)
    inputs, targets = splits.test[0]
    np.testing.assert_allclose(inputs[:, 0, 0, 0], [0.0, 0.0])
    np.testing.assert_allclose(targets[:, 0, 0, 0], [0.5, 1.0, 1.0])
    record = json.loads(json.dumps(splits.normalization.to_dict()))
    norm = Normalization.from_dict(record)
    np.testing.assert_allclose(norm.denormalize(targets[:, 0, 0, 0]), [25.0, 60.0, 60.0], atol=1e-5)
    values = np.random.default_rng(0).uniform(-10, 60, 50).astype(np.float32)
    np.testing.assert_allclose(norm.denormalize(norm.normalize(values)), values, atol=1e-4)


def test_stored_normalization_is_reused(tmp_path):
    """Prediction on a new file must use the training normalisation, not the new file's."""
    data = np.full((2, 5, 4, 4), 30.0, np.float32)
    stored = {"scale": "minmax", "data_min": -10.0, "data_max": 60.0, "dtype": "float32"}
    source = open_sequence_file(_save(tmp_path, "new.npy", data), "NTHW", 3, 2, normalization=stored)
    np.testing.assert_allclose(source[0][0], 40 / 70)
    mismatch = {"scale": "auto", "data_min": 0.0, "data_max": 255.0, "dtype": "uint8"}
    assert "made for uint8" in _error(open_sequence_file, source.path, "NTHW", 3, 2, normalization=mismatch)
    assert "not a normalisation record" in _error(Normalization.from_dict, {"scale": "auto"})


def test_normalization_argument_errors():
    assert "needs data_min and data_max" in _error(make_normalization, "float32", "minmax", -10, None)
    assert "below data_max" in _error(make_normalization, "float32", "minmax", 5, 5)
    assert "only used with data_scale minmax" in _error(make_normalization, "uint8", "auto", 0, 1)
    assert "not one of" in _error(make_normalization, "uint8", "zscore")


# ---------------------------------------------------------------- bad input

def test_wrong_rank_names_the_layout_and_the_fitting_ones(tmp_path):
    path = _save(tmp_path, "d.npy", _indexed())  # 5-D
    message = _error(open_sequence_file, path, "NTHW", 3, 2)
    assert "5 dimensions" in message and "NTHW needs 4" in message and "NTCHW or NTHWC" in message


def test_channel_heuristic(tmp_path):
    path = _save(tmp_path, "d.npy", np.zeros((2, 6, 32, 32, 1), np.uint8))  # NTHWC saved, NTCHW claimed
    message = _error(open_sequence_file, path, "NTCHW", 3, 2)
    assert "32 channels" in message and "heuristic" in message and "NTHWC" in message


def test_nan_and_inf_are_counted_and_located(tmp_path):
    data = np.zeros((3, 6, 2, 4, 4), np.float32)
    data[1, 4, 1, 2, 3] = np.nan
    data[2, 0, 0, 0, 0] = np.inf
    data[2, 5, 1, 3, 3] = -np.inf
    message = _error(open_sequence_file, _save(tmp_path, "nan.npy", data), "NTCHW", 3, 2)
    assert "3 NaN/inf" in message
    assert "sequence 1, frame 4, channel 1, row 2, column 3" in message


def test_nan_is_located_in_time_first_files(tmp_path):
    data = np.zeros((6, 3, 4, 4), np.float16)  # TNHW
    data[5, 2, 1, 0] = np.nan
    message = _error(open_sequence_file, _save(tmp_path, "nan.npy", data), "TNHW", 3, 2)
    assert "1 NaN/inf" in message and "sequence 2, frame 5, row 1, column 0" in message


def test_nan_is_located_in_fortran_ordered_files(tmp_path):
    data = np.asfortranarray(np.zeros((3, 6, 4, 5), np.float32))
    data[2, 1, 3, 4] = np.nan
    path = _save(tmp_path, "fortran.npy", data)
    assert np.load(path, mmap_mode="r").flags.f_contiguous
    assert "sequence 2, frame 1, row 3, column 4" in _error(open_sequence_file, path, "NTHW", 3, 2)


def test_scan_chunks_cover_the_whole_file(tmp_path, monkeypatch):
    """With chunks smaller than a frame, the count, the first position and the range are still exact."""
    monkeypatch.setattr(sequences, "_SCAN_BYTES", 28)  # 7 float32 values per chunk
    data = np.random.default_rng(0).uniform(0.1, 0.9, (3, 5, 4, 4)).astype(np.float32)
    data[1, 2, 0, 3] = 0.0
    data[2, 4, 3, 3] = 1.0
    assert SequenceFile(_save(tmp_path, "ok.npy", data), "NTHW").value_range() == (0.0, 1.0)
    data[2, 0, 1, 1] = np.nan
    data[0, 3, 2, 2] = np.inf
    message = _error(SequenceFile(_save(tmp_path, "bad.npy", data), "NTHW").value_range)
    assert "2 NaN/inf" in message and "sequence 0, frame 3, row 2, column 2" in message


def test_npz_key_errors(tmp_path):
    path = str(tmp_path / "two.npz")
    np.savez(path, radar=_indexed(), mask=_indexed())
    assert "2 arrays (radar, mask)" in _error(open_sequence_file, path, "NTCHW", 3, 2)
    message = _error(open_sequence_file, path, "NTCHW", 3, 2, npz_key="dbz")
    assert "no array 'dbz'" in message and "radar, mask" in message


def test_pickles_are_refused(tmp_path):
    objects = str(tmp_path / "objects.npy")
    np.save(objects, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert "pickled Python objects" in _error(open_sequence_file, objects, "NTHW", 1, 1)
    in_npz = str(tmp_path / "objects.npz")
    np.savez(in_npz, frames=np.array([{"a": 1}], dtype=object))
    assert "pickled Python objects" in _error(open_sequence_file, in_npz, "NTHW", 1, 1)
    raw = tmp_path / "raw.npy"
    raw.write_bytes(pickle.dumps(np.zeros((2, 4, 4, 4), np.uint8)))
    assert "pickle" in _error(open_sequence_file, str(raw), "NTHW", 1, 1)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.bool_])
def test_unsupported_dtypes(tmp_path, dtype):
    path = _save(tmp_path, "d.npy", np.zeros((2, 5, 4, 4), dtype))
    message = _error(open_sequence_file, path, "NTHW", 3, 2)
    assert np.dtype(dtype).name in message and "uint8, uint16, float16, float32" in message


def test_short_sequences_name_file_length_and_need(tmp_path):
    path = _save(tmp_path, "short.npy", np.zeros((10, 7, 4, 4), np.uint8))
    message = _error(open_sequences, path, "NTHW", 5, 4)
    assert "short.npy" in message and "7 frames" in message and "5 + 4 = 9" in message


def test_frame_count_and_stride_checks(tmp_path):
    path = _save(tmp_path, "d.npy", np.zeros((3, 7, 4, 4), np.uint8))
    assert "input_frames must be an integer >= 1" in _error(open_sequence_file, path, "NTHW", 0, 2)
    assert "output_frames" in _error(open_sequences, path, "NTHW", 2, 0)
    assert "window_stride" in _error(open_sequence_file, path, "NTHW", 2, 2, window_stride=-1)
    assert "not one of" in _error(open_sequence_file, path, "NCHW", 2, 2)


def test_missing_empty_truncated_and_foreign_files(tmp_path):
    assert "does not exist" in _error(open_sequences, str(tmp_path / "nope.npy"), "NTHW", 1, 1)
    assert "not found" in _error(open_sequence_file, str(tmp_path / "nope.npy"), "NTHW", 1, 1)
    (tmp_path / "empty.npy").write_bytes(b"")
    assert "empty" in _error(open_sequence_file, str(tmp_path / "empty.npy"), "NTHW", 1, 1)
    good = _save(tmp_path, "good.npy", np.zeros((4, 8, 16, 16), np.uint8))
    with open(good, "rb") as f:
        head = f.read(300)
    (tmp_path / "cut.npy").write_bytes(head)
    assert "truncated" in _error(open_sequence_file, str(tmp_path / "cut.npy"), "NTHW", 1, 1)
    (tmp_path / "cut.npz").write_bytes(b"PK\x03\x04garbage")
    assert "not a readable .npz" in _error(open_sequence_file, str(tmp_path / "cut.npz"), "NTHW", 1, 1)
    (tmp_path / "text.npy").write_text("hello")
    assert "neither .npy nor .npz" in _error(open_sequence_file, str(tmp_path / "text.npy"), "NTHW", 1, 1)


def test_no_sequences(tmp_path):
    path = _save(tmp_path, "none.npy", np.zeros((0, 8, 4, 4), np.uint8))
    assert "holds no sequences" in _error(SequenceFile, path, "NTHW")


def test_check_tileable():
    check_tileable(96, 96, "paper", 4)
    check_tileable(36, 44, "zoo", 2)  # zoo needs multiples of 4 whatever patch_size says
    message = _error(check_tileable, 97, 96, "paper", 4)
    assert "97x96" in message and "crop the frames to 96x96 or pad them to 100x96" in message
    assert "multiples of 4" in _error(check_tileable, 30, 32, "zoo", 1)
    assert "multiples of 8" in _error(check_tileable, 36, 64, "paper", 8)


# ---------------------------------------------------------------- mnist_test_seq.npy

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
    source = open_test_file(test_file)
    assert len(source) == 6
    for i in range(6):
        inputs, targets = source[i]
        assert inputs.shape == (10, 1, 64, 64) and targets.shape == (10, 1, 64, 64)
        assert inputs.dtype == np.float32 and targets.dtype == np.float32
        np.testing.assert_allclose(inputs[:, 0, 5, 5] * 255, 10 * i + np.arange(10), atol=1e-4)
        np.testing.assert_allclose(targets[:, 0, 5, 5] * 255, 10 * i + np.arange(10, 20), atol=1e-4)


def test_other_frame_split(test_file):
    inputs, targets = open_test_file(test_file, input_frames=5, output_frames=3)[1]
    assert inputs.shape[0] == 5 and targets.shape[0] == 3
    np.testing.assert_allclose(targets[:, 0, 0, 0] * 255, [15, 16, 17], atol=1e-4)


def test_scaled_to_unit_range(tmp_path):
    seqs = np.zeros((1, 20, 64, 64), np.uint8)
    seqs[0, :, 0, 0] = 255
    source = open_test_file(write_test_file(str(tmp_path / "t.npy"), seqs))
    inputs, targets = source[0]
    assert inputs.max() == 1.0 and inputs.min() == 0.0 and targets.max() == 1.0


def test_num_sequences_keeps_the_first(test_file):
    source = open_test_file(test_file, num_sequences=2)
    assert len(source) == 2
    np.testing.assert_allclose(source[1][0][0, 0, 0, 0] * 255, 10, atol=1e-4)
    with pytest.raises(IndexError):
        source[2]


def test_num_sequences_too_large(test_file):
    with pytest.raises(DataError, match="num_sequences 7 is more than the 6"):
        open_test_file(test_file, num_sequences=7)


def test_image_size_check(tmp_path):
    path = write_test_file(str(tmp_path / "t.npy"), _indexed_sequences(2, size=32))
    assert open_test_file(path, image_size=32).height == 32
    with pytest.raises(DataError, match="32x32, expected 64x64"):
        open_test_file(path, image_size=64)


def _assert_one_line_error(path, fragment, **kwargs):
    with pytest.raises(DataError, match=fragment) as err:
        open_test_file(str(path), **kwargs)
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


# ---------------------------------------------------------------- predict.py --input arrays

@pytest.mark.parametrize("array, fragment", [
    (np.full((10, 64, 64), np.nan, dtype=np.float32), "NaN"),
    (np.full((2, 10, 64, 64), 1.5, dtype=np.float64), "must lie in [0, 1]"),
    (np.full((10, 64, 64), 200.0, dtype=np.float32), "divide by 255"),
    (np.zeros((10, 64, 64), dtype=np.int64), "dtype int64"),
    (np.zeros((2, 10, 32, 32), dtype=np.uint8), "shape (2, 10, 32, 32)"),
    (np.zeros((0, 10, 64, 64), dtype=np.uint8), "shape (0, 10, 64, 64)"),
])
def test_user_arrays_with_bad_values_are_refused(array, fragment):
    with pytest.raises(DataError) as err:
        normalise_user_array(array, "x.npy")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_user_arrays_are_normalised():
    u8 = np.arange(10 * 64 * 64, dtype=np.int64).reshape(10, 64, 64) % 256
    as_uint8 = normalise_user_array(u8.astype(np.uint8), "a")
    as_float = normalise_user_array(u8.astype(np.float64) / 255.0, "b")
    as_5d = normalise_user_array((u8.astype(np.float32) / 255.0)[None, :, None], "c")
    assert as_uint8.shape == (1, 10, 1, 64, 64) and as_uint8.dtype == np.float32
    assert as_uint8.max() == 1.0 and as_uint8.min() == 0.0
    np.testing.assert_allclose(as_float, as_uint8, atol=1e-7)
    np.testing.assert_allclose(as_5d, as_uint8, atol=1e-7)


def test_unreadable_files_are_refused_in_one_line(tmp_path):
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "text.npy").write_text("not an array")
    for path, fragment in ((tmp_path / "missing.npy", "not found"), (objects, "Python objects"),
                           (tmp_path / "text.npy", "not a readable .npy")):
        with pytest.raises(DataError, match=fragment) as err:
            load_user_array(str(path))
        assert "\n" not in str(err.value)


def test_target_channels_cut_the_targets_and_leave_the_inputs_whole(tmp_path):
    data = _indexed(c=3)  # (N, T, 3, H, W)
    path = _save(tmp_path, "d.npy", data)
    inputs, targets = open_sequence_file(path, "NTCHW", 4, 3, target_channels=(1,))[0]
    assert inputs.shape == (4, 3, 8, 8) and targets.shape == (3, 1, 8, 8)
    np.testing.assert_allclose(targets[:, 0], data[0, 4:7, 1] / 255.0, rtol=1e-6)
    splits = sequences.open_sequences(path, "NTCHW", 4, 3, split=(0.5, 0.25, 0.25), target_channels=(0, 2))
    assert splits.channels == 3 and splits.val[0][1].shape == (3, 2, 8, 8)  # the frames keep their channel count
    message = _error(open_sequence_file, path, "NTCHW", 4, 3, target_channels=(0, 3))
    assert "target_channels [0, 3] names channel 3" in message and "3 channel(s), 0 to 2" in message
