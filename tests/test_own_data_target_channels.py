"""Target channels end to end through the scripts: a 3-channel dBZ file (rain cells, their smoothed previous frame,
the mean of both) trains in graph mode with target_channels [0] and the loss on every next frame; eval.py's
metrics, skill scores and baselines, predict.py's predictions.npy, the exported MINDIR and the Ascend 310 files
hold channel 0 only, and their numbers equal NumPy's on channel 0 of the raw file; bad target sets are one error
line with nothing written."""
import json

import numpy as np
import pytest
from PIL import Image

from src.data.rain_cells import RainCells
from tests.test_own_data_end_to_end import DBZ, TINY, ok, one_error_line, run

pytestmark = pytest.mark.slow

T_IN, T_OUT, SIZE = 4, 4, 16
SPLIT = ["--val_fraction", "0.2", "--test_fraction", "0.2"]


def _tiny(arch):
    """TINY with ``arch`` and the compiled step (mode graph), as training runs it."""
    return [{"pynative": "graph", "paper": arch}.get(arg, arg) for arg in TINY]


def radar_and_two_bands(n=10, seed=5):
    """(N, T, 3, 16, 16) float32 'dBZ': channel 0 the radar, channels 1 and 2 two other fields of the same scene."""
    cells = RainCells(n, T_IN + T_OUT, SIZE, channels=2, seed=seed).block(0, n)  # (N, T, 2, H, W)
    return np.concatenate([cells, cells.mean(axis=2, keepdims=True)], axis=2).astype(np.float32)


def _train_args(data, out, *extra, arch="paper"):
    return ("--dataset", "sequences", "--data_path", data, *DBZ, "--input_frames", T_IN, "--output_frames", T_OUT,
            *SPLIT, *_tiny(arch), "--output_dir", out, *extra)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(root, data file, checkpoint, train.py's stdout, eval.py's metrics.json) of the run with target_channels [0]."""
    root = tmp_path_factory.mktemp("targets")
    data = root / "radar_bands.npy"
    np.save(data, radar_and_two_bands())
    train = ok("train.py", *_train_args(data, root / "run", "--target_channels", "[0]", "--loss_frames", "all"))
    ckpt = root / "run" / "ckpt" / "last.ckpt"
    ok("eval.py", "--ckpt_file", ckpt, "--thresholds", "[20,35]", "--save_vis", "1", "--output_dir", root / "eval")
    report = json.loads((root / "eval" / "metrics.json").read_text())
    return root, data, ckpt, train.stdout, report


def _radar_truth(data, ckpt):
    """(inputs (n, T_in, 3, H, W), truth (n, T_out, H, W) of channel 0) of the test split, in [0, 1], from NumPy."""
    from src.checkpoint import checkpoint_meta, read_checkpoint

    test = checkpoint_meta(read_checkpoint(str(ckpt)))["data"]["split"]["test"]
    x = np.clip((np.load(data)[test].astype(np.float64) + 10.0) / 70.0, 0.0, 1.0)  # (n, T, 3, H, W)
    return x[:, :T_IN], x[:, T_IN:, 0]


def _sum_metrics(pred, truth):
    """(MSE, MAE) as the project defines them: per-frame sums over pixels, mean over sequences and frames."""
    err = pred - truth  # (n, T_out, H, W)
    return (err ** 2).sum(axis=(2, 3)).mean(), np.abs(err).sum(axis=(2, 3)).mean()


def test_training_stores_the_target_channels_and_predicts_one_channel(trained):
    from src.checkpoint import read_checkpoint_config

    _, _, ckpt, stdout, _ = trained
    cfg = read_checkpoint_config(str(ckpt))
    assert cfg.target_channels == [0] and cfg.channels == 3
    assert "predicting channel(s) 0 of 3" in stdout


def test_eval_scores_channel_0_and_its_baselines_predict_channel_0(trained):
    root, data, ckpt, _, report = trained
    inputs, truth = _radar_truth(data, ckpt)
    last = np.repeat(inputs[:, -1:, 0], T_OUT, axis=1)  # copy_last of the radar: (n, T_out, H, W)
    copy_last = report["baselines"]["copy_last"]
    want_mse, want_mae = _sum_metrics(last, truth)
    assert copy_last["mse"] == pytest.approx(want_mse, rel=1e-4) and copy_last["mae"] == pytest.approx(want_mae,
                                                                                                         rel=1e-4)
    zeros_mse, _ = _sum_metrics(np.zeros_like(truth), truth)
    assert report["baselines"]["zeros"]["mse"] == pytest.approx(zeros_mse, rel=1e-4)  # one channel, not three
    dbz = truth * 70.0 - 10.0
    pred = np.repeat(inputs[:, -1:, 0] * 70.0 - 10.0, T_OUT, axis=1) >= 20.0
    hits, union = (pred & (dbz >= 20.0)).sum(axis=(0, 2, 3)), (pred | (dbz >= 20.0)).sum(axis=(0, 2, 3))
    np.testing.assert_allclose(copy_last["skill_scores"]["by_threshold"][0]["per_lead_frame"]["csi"], hits / union,
                               rtol=1e-4)
    picture = np.asarray(Image.open(root / "eval" / "vis" / "seq_0000.png").convert("RGB")).astype(int)
    assert (np.abs(picture[..., 0] - picture[..., 1]) > 30).any()  # one dBZ channel: the radar colour scale


def test_predictions_hold_channel_0_and_score_as_numpy_does(trained, tmp_path):
    root, data, ckpt, _, report = trained
    proc = ok("predict.py", "--ckpt_file", ckpt, "--data_path", data, "--output_dir", tmp_path)
    assert "3x16x16 (C x H x W), predicting channel(s) 0" in proc.stdout
    predictions = np.load(tmp_path / "predictions.npy")  # dBZ, the data's layout NTCHW
    assert predictions.shape == (2, T_OUT, 1, SIZE, SIZE)
    _, truth = _radar_truth(data, ckpt)
    mse, mae = _sum_metrics((predictions[:, :, 0].astype(np.float64) + 10.0) / 70.0, truth)
    assert report["mse"] == pytest.approx(mse, rel=1e-4) and report["mae"] == pytest.approx(mae, rel=1e-4)


def test_the_exported_model_and_the_310_files_hold_channel_0(trained):
    from src.export.model_info import read_mindir_info

    root, data, ckpt, _, report = trained
    ok("export.py", "--ckpt_file", ckpt, "--file_name", root / "model", "--file_format", "MINDIR")
    info = read_mindir_info(str(root / "model.mindir"))
    assert info.input_shape == (1, T_IN, 3, SIZE, SIZE) and info.output_shape == (1, T_OUT, 1, SIZE, SIZE)
    ok("preprocess.py", "--mindir_file", root / "model.mindir", "--data_path", data, "--output_dir", root / "pre")
    manifest = json.loads((root / "pre" / "preprocess.json").read_text())
    assert manifest["label_shape"] == [T_OUT, 1, SIZE, SIZE] and manifest["target_channels"] == [0]
    ok("predict.py", "--mindir_file", root / "model.mindir", "--bin_dir", root / "pre" / "input", "--result_dir",
       root / "result")
    ok("postprocess.py", "--result_path", root / "result", "--preprocess_path", root / "pre", "--output_dir",
       root / "post")
    scored = json.loads((root / "post" / "metrics_310.json").read_text())
    assert scored["mse"] == pytest.approx(report["mse"], rel=1e-5)
    for name in ("copy_last", "extrapolation"):
        assert scored["baselines"][name]["mse"] == pytest.approx(report["baselines"][name]["mse"], rel=1e-5)


@pytest.mark.parametrize("targets, arch, fragments", [
    ("[3]", "paper", ["target_channels [3] names channel 3", "3 channel(s), 0 to 2"]),
    ("[0,0]", "paper", ["'target_channels'", "distinct channel indices"]),
    ("[0]", "stacked", ["'target_channels'", "arch stacked reads its own prediction"]),
])
def test_bad_target_channels_are_refused_in_one_line_before_anything_is_written(trained, tmp_path, targets, arch,
                                                                                fragments):
    _, data, _, _, _ = trained
    line = one_error_line(run("train.py", *_train_args(data, tmp_path / "run", "--target_channels", targets,
                                                        arch=arch)))
    assert all(fragment in line for fragment in fragments), line
    assert not (tmp_path / "run").exists()


def test_a_roll_out_and_another_target_set_are_refused_in_one_line(trained, tmp_path):
    root, data, ckpt, _, _ = trained
    line = one_error_line(run("eval.py", "--ckpt_file", ckpt, "--lead_frames", 8, "--output_dir", tmp_path / "e"))
    assert "'target_channels'" in line and "lead_frames 8" in line
    line = one_error_line(run("train.py", *_train_args(data, root / "run", "--target_channels", "[1]", "--resume",
                                                        "auto", "--allow_config_change", "true")))
    assert "target_channels=[0]" in line and "target_channels=[1]" in line
    assert not (tmp_path / "e").exists()
