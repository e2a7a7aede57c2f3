"""Every shipped config runs end to end on CPU: train -> eval -> export MINDIR -> predict from it.

Each file in configs/ (new files are picked up automatically) trains 2 steps with validation on
2 sequences, with the device path it ships (amp_level, loss_scale, mode, optimizer, loss,
schedule, architecture) executed on the CPU backend (``--amp_on_cpu true``: float16 kernels on
CPU; ``num_workers`` as shipped, lowered to the host's cores with a note). Overridden, and nothing
else: ``device_target``, ``amp_on_cpu``, the data
(``dataset``/``data_path``: generated fixtures), batch and step counts, and, to keep each config
near a minute on 2 cores, the frame counts and the layer widths: the full recipes' 128-64-64
paper network over 10 + 10 frames costs tens of seconds per float16 step on this CPU plus its
graph compilation, so the layers are narrowed to 8 channels each (same depth, kernel size and
patch size) and the sequences to 3 + 2 frames.
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from src.config import read_yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "*.yaml")))
TIMEOUT = 600
FRAMES = {"input_frames": "3", "output_frames": "2"}


def run(script, *args, cwd):
    proc = subprocess.run([sys.executable, os.path.join(REPO, script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"{script} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def narrowed_widths(shipped):
    """Same number of layers as shipped, 8 channels each (see the module docstring)."""
    widths = shipped.get("hidden_channels", [8])
    return ",".join("8" for _ in (widths if isinstance(widths, list) else [widths]))


SEQUENCE_FRAME = (1, 32, 32)  # (C, H, W) of the generated own-sequence fixture


def data_overrides(shipped, tmp_path):
    """The config's own kind of data, generated: MNIST files for dataset mnist, a tiny rain-cell file
    (10 sequences of 10 frames of 32x32 dBZ) for dataset sequences, nothing for synthetic.
    Returns (arguments, eval data_path or None, (C, H, W) of the frames)."""
    from tests.data_files import write_idx_images
    from src.data.rain_cells import RainCells

    dataset = shipped.get("dataset", "synthetic")
    if dataset == "synthetic":
        return ["--dataset", "synthetic"], None, (1, 64, 64)
    if dataset == "sequences":
        path = tmp_path / "rain.npy"
        np.save(path, RainCells(10, 10, SEQUENCE_FRAME[1], channels=SEQUENCE_FRAME[0]).block(0, 10))  # (N, T, C, H, W)
        return ["--dataset", "sequences", "--data_path", str(path), "--data_layout", "NTCHW"], None, SEQUENCE_FRAME
    if dataset == "mnist":
        data = tmp_path / "data"
        data.mkdir()
        rng = np.random.default_rng(0)
        digits = (rng.random((5010, 28, 28)) > 0.8).astype(np.uint8) * 255  # > 5000: the last 5000 validate
        write_idx_images(str(data / "train-images-idx3-ubyte.gz"), digits, compress="gzip")
        test = (rng.random((20, 3, 64, 64)) > 0.9).astype(np.uint8) * 255  # (T, N, H, W), as mnist_test_seq.npy
        np.save(data / "mnist_test_seq.npy", test)
        return ["--dataset", "mnist", "--data_path", str(data)], str(data / "mnist_test_seq.npy"), (1, 64, 64)
    pytest.fail(f"tests/test_configs.py has no generated fixture for dataset {dataset!r}: add one")


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=[os.path.basename(c) for c in CONFIGS])
def test_shipped_config_trains_evaluates_exports_and_predicts_on_cpu(config, tmp_path):
    shipped = read_yaml(config)
    data_args, test_file, frame = data_overrides(shipped, tmp_path)
    narrow = ["--hidden_channels", narrowed_widths(shipped)] if shipped.get("arch", "paper") == "paper" else []
    frames = [token for key, value in FRAMES.items() for token in (f"--{key}", value)]
    train = run("train.py", "--config_path", config, "--device_target", "CPU", "--amp_on_cpu", "true", *data_args,
                "--batch_size", "1", "--epochs", "1", "--steps_per_epoch", "2", "--val_sequences", "2",
                "--log_every", "1", "--output_dir", str(tmp_path / "run"), *narrow, *frames, cwd=tmp_path)
    workers = shipped.get("num_workers", 1)
    if workers > len(os.sched_getaffinity(0)):  # as shipped (Ascend/GPU: 8) on a host with fewer cores
        assert f"num_workers {workers} lowered to" in train.stdout, train.stdout[-2000:]
    assert "epoch: 1 step: 2, loss is" in train.stdout and "training finished" in train.stdout
    assert "amp_level" not in train.stderr  # the configured precision ran; nothing was ignored
    amp_level = shipped.get("amp_level", "O0")
    assert f"amp_level={amp_level}" in train.stdout
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert np.isfinite(history[0]["train_loss"]) and np.isfinite(history[0]["val_mse"])
    ckpt = str(tmp_path / "run" / "ckpt" / "last.ckpt")

    eval_args = ["--data_path", test_file] if test_file else []
    run("eval.py", "--ckpt_file", ckpt, "--device_target", "CPU", *eval_args, "--num_sequences", "2",
        "--output_dir", str(tmp_path / "eval"), cwd=tmp_path)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["num_sequences"] == 2 and np.isfinite(metrics["mse"])

    run("export.py", "--ckpt_file", ckpt, "--device_target", "CPU", "--file_name", str(tmp_path / "model"),
        "--file_format", "MINDIR", cwd=tmp_path)
    mindir = tmp_path / "model.mindir"
    assert mindir.is_file()
    if shipped.get("dataset", "synthetic") == "sequences":  # scored from the MINDIR in tests/test_journey.py
        _check_predict_reads_an_input_file(tmp_path, frame)
    else:
        _check_predictions_score_as_eval(tmp_path, metrics, test_file, amp_level)


def _check_predict_reads_an_input_file(tmp_path, frame):
    """predict.py from the exported MINDIR on a .npy of input frames writes predictions of the data's shape."""
    inputs = np.random.default_rng(1).random((1, 3) + frame).astype(np.float32)  # (N, T_in, C, H, W)
    np.save(tmp_path / "frames.npy", inputs)
    run("predict.py", "--mindir_file", str(tmp_path / "model.mindir"), "--input", str(tmp_path / "frames.npy"),
        "--output_dir", str(tmp_path / "predict"), cwd=tmp_path)
    outputs = [name for name in os.listdir(tmp_path / "predict") if name.endswith(".npy")]
    assert outputs, os.listdir(tmp_path / "predict")
    predicted = np.load(tmp_path / "predict" / outputs[0])
    assert predicted.shape[:2] == (1, int(FRAMES["output_frames"])), predicted.shape  # (N, T_out, ...)
    assert predicted.shape[-2:] == frame[1:] and np.isfinite(predicted).all()


def _numpy_mse(predictions, targets):
    """The README's MSE: per frame the SUM over pixels of the squared error in [0, 1], averaged."""
    diff = predictions.reshape(targets.shape).astype(np.float64) - targets  # (N, T_out, C, H, W)
    return float((diff ** 2).sum(axis=(-3, -2, -1)).mean())


def _held_out_targets(tmp_path, test_file, count):
    """(count, T_out, 1, H, W) targets of the sequences eval.py scored: the test file's, or the
    generated test_seed set's."""
    from src.config import config_from_dict
    from src.data.pipeline import generated_test_source, load_digits, read_batch

    if test_file:  # (T, N, H, W) uint8, as mnist_test_seq.npy
        frames = np.load(test_file)[:, :count].transpose(1, 0, 2, 3)[:, :, None] / 255.0  # (N, T, 1, H, W)
        t_in, t_out = int(FRAMES["input_frames"]), int(FRAMES["output_frames"])
        return frames[:, t_in:t_in + t_out]
    config_file = str(tmp_path / "run" / "config.yaml")
    cfg = config_from_dict(read_yaml(config_file), config_file)
    _, targets = read_batch(generated_test_source(cfg, load_digits(cfg, "val"), count), list(range(count)))
    return targets.astype(np.float64)


def _check_predictions_score_as_eval(tmp_path, metrics, test_file, amp_level):
    """predict.py from the exported MINDIR on eval.py's sequences writes predictions whose MSE,
    computed here with NumPy against the known targets, is the MSE eval.py reported from the
    checkpoint (fp32 rounding; float16 configs evaluate their checkpoint in float16)."""
    source = ["--data_path", test_file] if test_file else ["--dataset", "synthetic"]
    run("predict.py", "--mindir_file", str(tmp_path / "model.mindir"), *source, "--num_sequences", "2",
        "--output_dir", str(tmp_path / "predict_held_out"), cwd=tmp_path)
    predictions = np.load(tmp_path / "predict_held_out" / "predictions.npy")
    targets = _held_out_targets(tmp_path, test_file, 2)
    assert predictions.shape[:2] == targets.shape[:2], (predictions.shape, targets.shape)
    tolerance = 1e-4 if amp_level == "O0" else 2e-2
    np.testing.assert_allclose(_numpy_mse(predictions, targets), metrics["mse"], rtol=tolerance)
