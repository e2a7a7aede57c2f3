"""Own data with no-data pixels through the scripts: a dBZ file with NaN regions is refused without --nodata (one
error line, nothing written) and trains and evaluates with --nodata nan; a declared value (-9999) works the same;
the masked fraction is reported (console, metrics.json) and equals the file's; the baselines are scored on the
pixels with data only (checked against NumPy on the raw file); the pictures draw no-data pixels in their colour."""
import json

import numpy as np
import pytest
from PIL import Image

from src.data.rain_cells import RainCells
from src.visualize import NO_DATA
from tests.test_own_data_end_to_end import DBZ, TINY, ok, one_error_line, run

T_IN, T_OUT = 4, 4


def frames_with_gaps(marker):
    """(10, 8, 1, 16, 16) float32 dBZ rain cells; a 6x5 block of every frame of the even sequences and scattered
    pixels of all of them hold ``marker`` (no measurement)."""
    data = RainCells(10, T_IN + T_OUT, 16, seed=3).block(0, 10)  # (N, T, 1, 16, 16)
    rng = np.random.default_rng(0)
    gaps = rng.random(data.shape) < 0.05
    gaps[::2, :, :, 3:9, 2:7] = True
    return np.where(gaps, np.float32(marker), data).astype(np.float32), gaps


def _train(root, data, *extra):
    return run("train.py", "--dataset", "sequences", "--data_path", data, *DBZ, "--input_frames", T_IN,
               "--output_frames", T_OUT, "--val_fraction", "0.2", "--test_fraction", "0.2", *TINY, "--output_dir",
               root / "run", *extra)


@pytest.fixture(scope="module", params=["nan", "-9999"])
def trained(request, tmp_path_factory):
    """(marker, root, data file, gaps, checkpoint, eval.py's stdout) of a model trained with --nodata marker."""
    marker = request.param
    root = tmp_path_factory.mktemp("nodata")
    data = root / "gaps.npy"
    values, gaps = frames_with_gaps(float(marker))
    np.save(data, values)
    train = ok("train.py", "--dataset", "sequences", "--data_path", data, *DBZ, "--input_frames", T_IN,
               "--output_frames", T_OUT, "--val_fraction", "0.2", "--test_fraction", "0.2", *TINY, "--output_dir",
               root / "run", "--nodata", marker)
    assert f"no-data {float(marker):g}, {int(gaps.sum())} of {gaps.size} values of the file" in train.stdout
    ckpt = root / "run" / "ckpt" / "last.ckpt"
    proc = ok("eval.py", "--ckpt_file", ckpt, "--thresholds", "[20,35]", "--save_vis", "2")
    return marker, root, data, gaps, ckpt, proc.stdout


def test_nan_is_refused_without_nodata_in_one_line_and_nothing_is_written(tmp_path):
    values, _ = frames_with_gaps(np.nan)
    np.save(tmp_path / "gaps.npy", values)
    line = one_error_line(_train(tmp_path, tmp_path / "gaps.npy"))
    assert "NaN/inf values" in line and "--nodata nan" in line and "sequence 0" in line
    assert not (tmp_path / "run").exists()


def test_a_declared_value_is_left_out_of_data_scale_auto_s_range_check(tmp_path):
    from src.data.sequences import open_sequences

    values, gaps = frames_with_gaps(-9999.0)
    unit = np.where(gaps, values, np.clip((values + 10) / 70, 0, 1)).astype(np.float32)  # [0, 1] and -9999
    np.save(tmp_path / "gaps.npy", unit)
    proc = run("train.py", "--dataset", "sequences", "--data_path", tmp_path / "gaps.npy", "--input_frames", T_IN,
               "--output_frames", T_OUT, *TINY, "--output_dir", tmp_path / "run")
    assert "outside [0, 1]" in one_error_line(proc) and not (tmp_path / "run").exists()
    splits = open_sequences(tmp_path / "gaps.npy", "NTCHW", T_IN, T_OUT, nodata=(-9999.0,))
    inputs, targets = splits.train.batch([0, 1])
    assert splits.train.file.no_data_count == int(gaps.sum())
    first = splits.train.sequence_indices[:2]
    np.testing.assert_array_equal(np.isnan(targets), gaps[first, T_IN:])  # NaN marks the targets' gaps
    np.testing.assert_array_equal(inputs, np.where(gaps[first, :T_IN], 0.0, unit[first, :T_IN]))  # filled


@pytest.mark.slow
def test_training_stores_nodata_in_the_checkpoint(trained):
    from src.checkpoint import checkpoint_config, checkpoint_meta, read_checkpoint

    marker, root, _, _, ckpt, _ = trained
    stored = read_checkpoint(str(ckpt))
    assert checkpoint_config(stored, str(ckpt)).nodata == [marker]
    assert checkpoint_meta(stored)["data"]["normalization"]["nodata"] == [marker]
    history = json.loads((root / "run" / "history.json").read_text())
    assert np.isfinite(history[0]["train_loss"]) and np.isfinite(history[0]["val_mse"])


def _test_windows(ckpt, data, gaps):
    """(raw dBZ test windows (n, T, 1, H, W), their gaps) of the split of record."""
    from src.checkpoint import checkpoint_meta, read_checkpoint

    test = checkpoint_meta(read_checkpoint(str(ckpt)))["data"]["split"]["test"]
    return np.load(data)[test], gaps[test]


@pytest.mark.slow
def test_eval_reports_the_masked_fraction_and_scores_baselines_on_pixels_with_data(trained):
    marker, root, data, gaps, ckpt, stdout = trained
    raw, missing = _test_windows(ckpt, data, gaps)
    target_missing = missing[:, T_IN:]
    report = json.loads((root / "run" / "eval" / "metrics.json").read_text())
    assert report["no_data"]["no_data_values"] == int(target_missing.sum()) > 0
    assert report["no_data"]["fraction"] == pytest.approx(target_missing.mean())
    assert f"no data ({marker}): {int(target_missing.sum())} of {target_missing.size} target values" in stdout
    assert np.isfinite([report["mse"], report["mae"], report["ssim"], report["psnr"]]).all()
    # persistence with the inputs' no-data pixels filled by data_min, scored where the truth has data
    x = np.clip((np.where(missing, -10.0, raw).astype(np.float64) + 10) / 70, 0, 1)  # (n, T, 1, H, W)
    pred = np.repeat(x[:, T_IN - 1:T_IN], T_OUT, axis=1)
    err = np.where(target_missing, 0.0, pred - x[:, T_IN:])
    copy_last = report["baselines"]["copy_last"]
    assert copy_last["mse"] == pytest.approx((err ** 2).sum(axis=(2, 3, 4)).mean(), rel=1e-5)
    assert copy_last["mae"] == pytest.approx(np.abs(err).sum(axis=(2, 3, 4)).mean(), rel=1e-5)
    truth_events = (x[:, T_IN:] * 70 - 10 >= 20) & ~target_missing
    pred_events = (pred * 70 - 10 >= 20) & ~target_missing
    hits = (truth_events & pred_events).sum(axis=(0, 2, 3, 4))
    csi = hits / (truth_events | pred_events).sum(axis=(0, 2, 3, 4))
    got = copy_last["skill_scores"]["by_threshold"][0]["per_lead_frame"]["csi"]
    np.testing.assert_allclose(got, csi, rtol=1e-9)


@pytest.mark.slow
def test_pictures_draw_no_data_pixels_in_their_colour(trained):
    _, root, _, _, _, _ = trained
    picture = np.asarray(Image.open(root / "run" / "eval" / "vis" / "seq_0000.png").convert("RGB"))
    assert (picture == np.array(NO_DATA, np.uint8)).all(axis=-1).sum() > 0


@pytest.mark.slow
def test_predictions_are_full_frames_in_the_data_units(trained):
    marker, root, data, gaps, ckpt, _ = trained
    out = root / "pred"
    ok("predict.py", "--ckpt_file", ckpt, "--input", data, "--num_sequences", "2", "--output_dir", out)
    predictions = np.load(out / "predictions.npy")
    assert predictions.shape == (2, T_OUT, 1, 16, 16) and np.isfinite(predictions).all()
    assert predictions.min() >= -10 - 1e-3 and predictions.max() <= 60 + 1e-3


@pytest.mark.slow
def test_exported_model_and_the_310_files_read_and_score_no_data_alike(trained, tmp_path):
    """export.py carries nodata into the MINDIR; preprocess.py (no flag) fills the inputs and keeps NaN in the labels;
    postprocess.py scores the pixels with data: the numbers eval.py gave for the checkpoint."""
    from src.export.model_info import read_mindir_info

    marker, root, _, _, ckpt, _ = trained
    ok("export.py", "--ckpt_file", ckpt, "--file_name", tmp_path / "model", "--file_format", "MINDIR")
    assert read_mindir_info(str(tmp_path / "model.mindir")).config.nodata == [marker]
    ok("preprocess.py", "--mindir_file", tmp_path / "model.mindir", "--output_dir", tmp_path / "pre")
    manifest = json.loads((tmp_path / "pre" / "preprocess.json").read_text())
    assert manifest["normalization"]["nodata"] == [marker]
    ok("predict.py", "--mindir_file", tmp_path / "model.mindir", "--bin_dir", tmp_path / "pre" / "input",
       "--result_dir", tmp_path / "result")  # CPU stand-in for the 310 app
    ok("postprocess.py", "--result_path", tmp_path / "result", "--preprocess_path", tmp_path / "pre", "--output_dir",
       tmp_path / "post", "--thresholds", "[20,35]")
    device = json.loads((tmp_path / "post" / "metrics_310.json").read_text())
    host = json.loads((root / "run" / "eval" / "metrics.json").read_text())
    assert device["no_data"]["no_data_values"] == host["no_data"]["no_data_values"] > 0
    for key in ("mse", "mae", "ssim"):
        assert device[key] == pytest.approx(host[key], rel=1e-5), key
    for name in ("copy_last", "zeros"):
        assert device["baselines"][name]["mse"] == pytest.approx(host["baselines"][name]["mse"], rel=1e-6), name


@pytest.mark.slow
def test_another_nodata_than_the_model_s_is_refused_in_one_line(trained, tmp_path):
    marker, _, _, _, ckpt, _ = trained
    other = "-1" if marker == "nan" else "nan"
    line = one_error_line(run("eval.py", "--ckpt_file", ckpt, "--nodata", other, "--output_dir", tmp_path / "e"))
    assert "nodata" in line and not (tmp_path / "e").exists()
