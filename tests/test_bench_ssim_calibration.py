"""The SSIM calibration benchmark scores degraded copies of the truth with the project's metrics."""
import subprocess
import sys

import numpy as np

from bench import ssim_calibration
from src.baselines import predict_baseline
from src.config import load_config
from src.evaluation import build_source
from tests.test_metrics import compute_metrics


def _held_out(count=4):
    cfg = load_config(["--config_path", "configs/cpu_small.yaml", "--num_sequences", str(count)])
    return build_source(cfg)[0]


def test_shift_moves_content_down_and_right_with_zero_fill():
    frames = np.zeros((1, 1, 1, 6, 6), np.float32)
    frames[..., 1, 2] = 1.0
    moved = ssim_calibration.shift(frames, 2)
    assert moved[0, 0, 0, 3, 4] == 1.0 and moved.sum() == 1.0
    assert ssim_calibration.shift(frames, 5).sum() == 0.0  # moved out of the frame


def test_blur_keeps_shape_and_spreads_ink():
    frames = np.zeros((1, 2, 1, 9, 9), np.float32)
    frames[..., 4, 4] = 1.0
    blurred = ssim_calibration.blur(frames, 1.0)
    assert blurred.shape == frames.shape and blurred.dtype == np.float32
    assert 0.1 < blurred[0, 0, 0, 4, 4] < 0.5 and blurred[0, 1, 0, 4, 5] > 0.05
    np.testing.assert_allclose(blurred.sum(axis=(-1, -2)), 1.0, atol=1e-3)


def test_rows_match_direct_metrics_and_order_by_degradation():
    source = _held_out()
    results = dict(ssim_calibration.calibrate(source, batch_size=3))
    targets = np.stack([source[i][1] for i in range(len(source))])  # (N, T, 1, H, W)
    inputs = np.stack([source[i][0] for i in range(len(source))])
    zeros = compute_metrics(predict_baseline("zeros", inputs, targets.shape[1]), targets)
    assert abs(results["predict all-zero frames"]["mse"] - float(np.mean(zeros["mse"]))) < 1e-6
    assert abs(results["predict all-zero frames"]["ssim"] - float(np.mean(zeros["ssim"]))) < 1e-9
    assert results["truth (perfect prediction)"]["mse"] == 0.0
    assert results["truth (perfect prediction)"]["ssim"] > 0.9999
    blur_ssim = [results[f"truth, Gaussian blur sigma {s:g} px"]["ssim"] for s in ssim_calibration.BLUR_SIGMAS]
    blur_mse = [results[f"truth, Gaussian blur sigma {s:g} px"]["mse"] for s in ssim_calibration.BLUR_SIGMAS]
    assert np.all(np.diff(blur_ssim) < 0) and np.all(np.diff(blur_mse) > 0)
    shift_mse = [results[f"truth moved by ({d}, {d}) px"]["mse"] for d in ssim_calibration.SHIFTS]
    assert np.all(np.diff(shift_mse) > 0)


def test_command_line_prints_the_table():
    done = subprocess.run([sys.executable, "bench/ssim_calibration.py", "--num_sequences", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| predict all-zero frames |" in done.stdout and "Gaussian blur sigma 2 px" in done.stdout


def test_command_line_rejects_a_bad_key():
    done = subprocess.run([sys.executable, "bench/ssim_calibration.py", "--num_sequence", "2"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert done.stderr.strip().startswith("error:") and "num_sequences" in done.stderr
