"""Own sequence arrays in the pipeline: epoch order, rank shards, validation, the config the data
fixes, the windows eval.py scores, and equality with the dedicated Moving MNIST test-set reader."""
import numpy as np
import pytest

from src.config import load_config
from src.data.pipeline import (RankBatches, ShuffledWindows, TrainingData, config_for_frames, evaluation_windows,
                               global_index, open_sequence_splits, read_batch)
from src.data.sequences import open_test_file
from src.errors import ConfigError, DataError
from tests.data_files import data_error_message, window_location, write_test_file


def _rain_like(n=10, t=8, c=3, h=8, w=12, seed=0):
    """(N, T, C, H, W) float32 'dBZ' in [-10, 60], every window distinct."""
    return np.random.default_rng(seed).uniform(-10, 60, size=(n, t, c, h, w)).astype(np.float32)


def _cfg(path, **overrides):
    values = dict(dataset="sequences", data_path=str(path), data_layout="NTCHW", data_scale="minmax", data_min=-10.0,
                  data_max=60.0, input_frames=2, output_frames=2, val_fraction=0.2, test_fraction=0.2,
                  batch_size=3, steps_per_epoch=4, val_sequences=0, hidden_channels=[8])
    values.update(overrides)
    return load_config([], **values)


@pytest.fixture
def rain_file(tmp_path):
    path = tmp_path / "rain.npy"
    np.save(path, _rain_like())
    return path


_error = data_error_message


# ---------------------------------------------------------------- training order

def test_epoch_order_is_a_permutation_per_pass_seeded_by_seed_and_epoch(rain_file):
    windows = open_sequence_splits(_cfg(rain_file)).train  # 6 sequences x 2 windows
    n = len(windows)
    epoch0 = ShuffledWindows(windows, 2 * n + 3, seed=1, epoch=0)
    order = epoch0.window_indices(np.arange(len(epoch0)))
    for k in range(2):  # each full pass visits every window once
        assert sorted(order[k * n:(k + 1) * n].tolist()) == list(range(n))
    assert order[:n].tolist() != order[n:2 * n].tolist()  # passes are shuffled independently
    again = ShuffledWindows(windows, 2 * n + 3, seed=1, epoch=0).window_indices(np.arange(2 * n + 3))
    np.testing.assert_array_equal(order, again)  # a pure function of (seed, epoch): resume reads the same
    other_epoch = ShuffledWindows(windows, n, seed=1, epoch=1).window_indices(np.arange(n))
    other_seed = ShuffledWindows(windows, n, seed=2, epoch=0).window_indices(np.arange(n))
    assert other_epoch.tolist() != order[:n].tolist() and other_seed.tolist() != order[:n].tolist()
    with pytest.raises(IndexError):
        epoch0.window_indices([len(epoch0)])


def test_ranks_read_disjoint_windows_and_batches_equal_the_items(rain_file):
    cfg = _cfg(rain_file, batch_size=2, steps_per_epoch=3)
    data = TrainingData(cfg)
    source = data.epoch_source(epoch=0, group_size=2)
    assert len(source) == 3 * 2 * 2
    seen = []
    for rank in range(2):
        batches = RankBatches(source, rank, 2, 2, 0, 3)
        for step in range(3):
            inputs, targets = batches[step]  # (B, T_in, C, H, W), (B, T_out, C, H, W)
            assert inputs.shape == (2, 2, 3, 8, 12) and targets.shape == (2, 2, 3, 8, 12)
            for b in range(2):
                g = global_index(step, rank, 2, 2, b)
                item_in, item_out = source[g]
                np.testing.assert_array_equal(inputs[b], item_in)
                np.testing.assert_array_equal(targets[b], item_out)
                seen.append(int(source.window_indices([g])[0]))
    assert len(seen) == len(set(seen)) == 12  # one pass of the 12 training windows, split over the ranks


def test_training_windows_come_from_training_sequences_only(rain_file):
    data = TrainingData(_cfg(rain_file, val_sequences=4))
    split = data.record["split"]
    assert set(split["train"]).isdisjoint(split["val"]) and set(split["train"]).isdisjoint(split["test"])
    source = data.epoch_source(0)
    windows = data.splits.train
    used = {window_location(windows, int(i))[0] for i in source.window_indices(np.arange(len(source)))}
    assert used <= set(split["train"])
    assert len(data.validation) == 4  # spread over the 2 val sequences x 2 windows
    raw = np.load(rain_file)
    inputs, _ = read_batch(data.validation, [0])
    seq = split["val"][0]
    np.testing.assert_allclose(inputs[0], (raw[seq, :2] + 10) / 70, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- the config the data fixes

def test_training_data_fixes_frame_shape_dtype_and_records_normalisation(rain_file):
    cfg = _cfg(rain_file)
    assert (cfg.channels, cfg.frame_height, cfg.frame_width, cfg.data_dtype) == (0, 0, 0, "")
    data = TrainingData(cfg)
    resolved = data.cfg
    assert (resolved.channels, resolved.frame_height, resolved.frame_width) == (3, 8, 12)
    assert resolved.data_dtype == "float32"
    record = data.record
    assert record["frame_shape"] == [3, 8, 12]
    assert record["normalization"] == {"scale": "minmax", "data_min": -10.0, "data_max": 60.0, "dtype": "float32"}
    assert record["split"]["mode"] == "file" and record["split"]["num_sequences"] == 10
    assert record["windows"] == {"train": 12, "val": 4, "test": 4}
    assert "3x8x12" in data.describe()


def test_a_config_naming_another_frame_shape_is_one_line_with_both_shapes(rain_file):
    message = _error(TrainingData, _cfg(rain_file, channels=1))
    assert "3x8x12" in message and "1xanyxany" in message
    message = _error(config_for_frames, _cfg(rain_file, channels=3, frame_height=16, frame_width=12), (3, 8, 12),
                     "float32", "x.npy", "the model m.ckpt")
    assert "x.npy: frames are 3x8x12" in message and "the model m.ckpt expects 3x16x12" in message


def test_frames_the_network_cannot_tile_are_refused_with_the_numbers(tmp_path):
    np.save(tmp_path / "odd.npy", _rain_like(h=10, w=12))
    message = _error(TrainingData, _cfg(tmp_path / "odd.npy"))  # paper arch, patch 4
    assert "10x12" in message and "multiples of 4" in message and "odd.npy" in message
    message = _error(TrainingData, _cfg(tmp_path / "odd.npy", arch="zoo"))
    assert "halves the frames twice" in message
    assert TrainingData(_cfg(tmp_path / "odd.npy", patch_size=2)).cfg.frame_height == 10


def test_config_refuses_explicit_untileable_frames_and_missing_minmax_bounds():
    with pytest.raises(ConfigError, match=r"10x12.*multiples of 4"):
        load_config([], dataset="sequences", frame_height=10, frame_width=12)
    with pytest.raises(ConfigError, match="'data_max': data_scale minmax needs data_min and data_max"):
        load_config([], dataset="sequences", data_scale="minmax")
    with pytest.raises(ConfigError, match="only used with data_scale minmax"):
        load_config(["--dataset", "sequences", "--data_min", "0"])
    with pytest.raises(ConfigError, match="does not fit dataset synthetic"):
        load_config([], channels=3)
    with pytest.raises(ConfigError, match="outside \\(0, 1\\]"):
        load_config(["--thresholds", "20"])  # synthetic: pixel values


def test_float_list_and_optional_float_keys_parse_from_yaml_and_command_line():
    cfg = load_config(["--thresholds", "[20, 35.5]", "--dataset", "sequences", "--data_scale", "minmax",
                       "--data_min=-10", "--data_max", "60"])
    assert cfg.thresholds == [20.0, 35.5] and cfg.data_min == -10.0 and cfg.data_max == 60.0
    assert load_config(["--thresholds", "0.5"]).thresholds == [0.5]
    assert load_config([]).data_min is None
    again = load_config([], **cfg.to_dict())  # what a checkpoint's yaml gives back
    assert again.to_dict() == cfg.to_dict()
    for bad in ("[20,abc]", "[20,inf]"):
        with pytest.raises(ConfigError, match="thresholds"):
            load_config(["--dataset", "sequences", "--thresholds", bad])
    with pytest.raises(ConfigError, match="must not repeat"):
        load_config(["--dataset", "sequences", "--thresholds", "20,20"])


# ---------------------------------------------------------------- what eval.py scores

def test_eval_scores_the_test_split_a_whole_file_or_a_directory_test_file(rain_file, tmp_path):
    cfg = _cfg(rain_file)
    splits = open_sequence_splits(cfg)
    test, described = evaluation_windows(cfg)
    assert "test split" in described
    np.testing.assert_array_equal(test.sequence_indices, splits.split_record["test"])
    whole, _ = evaluation_windows(cfg.replace(eval_split="all"))
    assert len(whole) == 20
    first, described = evaluation_windows(cfg.replace(eval_split="all", num_sequences=3))
    assert len(first) == 3 and "first 3" in described and first.channels == 3
    np.testing.assert_array_equal(read_batch(first, [2])[0], whole.batch([2])[0])
    folder = tmp_path / "splits"
    folder.mkdir()
    np.save(folder / "test.npy", _rain_like(n=3, seed=5))
    in_dir, described = evaluation_windows(cfg.replace(data_path=str(folder)))
    assert len(in_dir) == 6 and "test file" in described
    with pytest.raises(ConfigError, match="directory"):
        evaluation_windows(cfg.replace(data_path=str(folder), eval_split="all"))


def test_eval_split_val_scores_the_validation_split_or_file(rain_file, tmp_path):
    cfg = _cfg(rain_file).replace(eval_split="val")
    val, described = evaluation_windows(cfg)
    assert "val split" in described and "val_fraction" in described
    np.testing.assert_array_equal(val.sequence_indices, open_sequence_splits(cfg).split_record["val"])
    assert not set(val.sequence_indices) & set(open_sequence_splits(cfg).split_record["test"])
    folder = tmp_path / "splits"
    folder.mkdir()
    np.save(folder / "test.npy", _rain_like(n=3, seed=5))
    with pytest.raises(DataError, match=r"holds no val.npy or val.npz; .* eval_split val"):
        evaluation_windows(cfg.replace(data_path=str(folder)))
    np.save(folder / "val.npy", _rain_like(n=2, seed=6))
    in_dir, described = evaluation_windows(cfg.replace(data_path=str(folder)))
    assert len(in_dir) == 4 and "the val file" in described


def test_a_stored_normalisation_scales_other_data_like_the_training_data(tmp_path):
    np.save(tmp_path / "u8.npy", (np.arange(2 * 4 * 1 * 8 * 8) % 256).astype(np.uint8).reshape(2, 4, 1, 8, 8))
    cfg = load_config([], dataset="sequences", data_path=str(tmp_path / "u8.npy"), input_frames=2, output_frames=2,
                      eval_split="all", data_dtype="uint16")  # a model trained on uint16 data, auto scaled
    message = _error(evaluation_windows, cfg)
    assert "uint8" in message and "uint16" in message


# ---------------------------------------------------------------- Moving MNIST's file as own sequences

def test_tnhw_config_windows_equal_the_test_file_reader_bit_for_bit(tmp_path):
    sequences = np.random.default_rng(3).integers(0, 256, size=(5, 20, 16, 16), dtype=np.uint8)  # (N, T, H, W)
    path = write_test_file(str(tmp_path / "mnist_test_seq.npy"), sequences)  # stored (T, N, H, W)
    cfg = load_config([], dataset="sequences", data_path=path, data_layout="TNHW", eval_split="all", input_frames=10,
                      output_frames=10)
    windows, _ = evaluation_windows(cfg)
    reader = open_test_file(path, 0, 10, 10, image_size=16)
    assert len(windows) == len(reader) == 5
    for i in range(5):
        for got, expected in zip(windows[i], reader[i]):
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)


def test_resume_does_not_count_keys_left_to_the_data_as_changes():
    from src.training.resume import config_differences

    requested = load_config([], dataset="sequences")  # e.g. the recipe yaml again: channels 0 = from the data
    stored = requested.replace(channels=3, frame_height=8, frame_width=12, data_dtype="float32")
    assert config_differences(stored, requested) == []
    assert config_differences(stored, requested.replace(channels=1)) == [("channels", 3, 1)]


# ---------------------------------------------------------------- random crops (crop_size)

def test_random_crops_cut_inputs_and_targets_at_one_seeded_place(tmp_path):
    path = tmp_path / "big.npy"
    np.save(path, _rain_like(h=16, w=20))
    data = TrainingData(_cfg(path, crop_size=8, hidden_channels=[4], patch_size=4))
    epoch = data.epoch_source(0)
    whole = ShuffledWindows(data.splits.train, len(epoch), seed=data.cfg.seed, epoch=0)
    indices = np.arange(len(epoch))
    inputs, targets = read_batch(epoch, indices)
    full_in, full_out = read_batch(whole, indices)  # (n, T, C, 16, 20) each
    assert inputs.shape == full_in.shape[:3] + (8, 8) and targets.shape == full_out.shape[:3] + (8, 8)
    corners = epoch.offsets(indices)
    assert corners[:, 0].max() <= 8 and corners[:, 1].max() <= 12 and corners.min() >= 0
    assert len({tuple(c) for c in corners}) > 1  # offsets vary
    for k, (r, c) in enumerate(corners):  # the same place in the observed and the predicted frames
        np.testing.assert_array_equal(inputs[k], full_in[k, ..., r:r + 8, c:c + 8])
        np.testing.assert_array_equal(targets[k], full_out[k, ..., r:r + 8, c:c + 8])
    np.testing.assert_array_equal(data.epoch_source(0).offsets(indices), corners)  # resume reads the same crops
    assert data.epoch_source(1).offsets(indices).tolist() != corners.tolist()
    assert "trained on random 8x8 crops" in data.describe()


def test_a_crop_larger_than_the_frames_is_refused_naming_the_file(rain_file):
    message = _error(TrainingData, _cfg(rain_file, crop_size=12, patch_size=4))
    assert str(rain_file) in message and "8x12" in message and "crop_size 12" in message and "up to 8" in message


@pytest.mark.parametrize("overrides, fragment", [
    (dict(dataset="synthetic", data_path="./data"), "is for dataset sequences"),
    (dict(crop_size=10, patch_size=4), "crops of 10x10, but arch paper cuts frames into 4x4 patches"),
    (dict(crop_size=8, peephole=True), "peephole weights are per pixel"),
])
def test_crop_size_that_would_be_ignored_or_cannot_run_is_refused(tmp_path, overrides, fragment):
    values = dict(crop_size=8, patch_size=4)
    values.update(overrides)
    with pytest.raises(ConfigError, match=fragment):
        _cfg(tmp_path / "x.npy", **values)


def test_target_channels_reach_every_split_crops_and_the_no_data_mask(tmp_path):
    """target_channels [1]: training windows (also cropped), validation and evaluation windows hold channel 1 as
    targets and every channel as inputs; with nodata the mask of the compiled step is that channel's."""
    from src.data.pipeline import MaskedBatches, RankBatches

    raw = _rain_like()
    raw[:, :, 1, :, 0] = np.nan  # no data in column 0 of channel 1 (a target) ...
    raw[:, :, 0, :, 5] = np.nan  # ... and in column 5 of channel 0 (an input only)
    np.save(tmp_path / "gaps.npy", raw)
    data = TrainingData(_cfg(tmp_path / "gaps.npy", target_channels=[1], nodata=["nan"], crop_size=4,
                             val_sequences=2))
    assert "predicting channel(s) 1 of 3" in data.describe()
    inputs, targets = read_batch(data.epoch_source(0), np.arange(3))
    assert inputs.shape == (3, 2, 3, 4, 4) and targets.shape == (3, 2, 1, 4, 4)
    assert data.validation[0][1].shape == (2, 1, 8, 12)
    inputs, filled, valid = MaskedBatches(RankBatches(data.splits.train, 0, 1, 3, 0, 4))[0]  # whole frames
    assert valid.shape == (3, 2, 1, 8, 12) and np.isfinite(filled).all() and np.isfinite(inputs).all()
    assert (valid[..., 0] == 0).all() and (valid[..., 1:] == 1).all()  # channel 0's gaps are no target's
    source, _ = evaluation_windows(data.cfg)
    window, (seq, start) = source[0], window_location(source, 0)
    truth = np.clip((raw[seq, start + 2:start + 4, 1:2] + 10) / 70, 0, 1)  # (T_out, 1, H, W), NaN kept
    np.testing.assert_allclose(window[1], truth, rtol=1e-6)
    assert window[0].shape == (2, 3, 8, 12)
