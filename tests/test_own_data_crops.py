"""Large domains (crop_size, export_height/export_width): a model trained on 48x48 random crops of 96x96 rain-cell
frames scores whole 96x96 windows from its checkpoint, its MINDIR export of the whole frame predicts what the
checkpoint does, and its export for a larger deployment frame (MINDIR and ONNX) predicts what the checkpoint's
network does on that frame (predict.py's parity check too); eval_onnx.py and the Ascend 310 path
(scripts/run_infer_310.sh, its preprocess.py) read the deployment frame from the file."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from src.data.rain_cells import RainCells
from tests.test_own_data_end_to_end import DBZ, REPO, TINY, ok

pytestmark = pytest.mark.slow

T_IN, T_OUT = 3, 2
DEPLOY_H, DEPLOY_W = 144, 192  # the deployment frame: larger than the data's 96x96, not square
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def crop_run(tmp_path_factory):
    """(root, data file, checkpoint) of a tiny 3 -> 2 model trained on 48x48 crops of 96x96 frames."""
    root = tmp_path_factory.mktemp("crops")
    data = root / "rain.npy"
    np.save(data, RainCells(10, 5, 96, seed=4).block(0, 10))  # (10, 5, 1, 96, 96) dBZ
    proc = ok("train.py", "--dataset", "sequences", "--data_path", data, *DBZ, "--input_frames", T_IN,
              "--output_frames", T_OUT, "--val_fraction", "0.2", "--test_fraction", "0.2", *TINY, "--crop_size", 48,
              "--output_dir", root / "run")
    assert "trained on random 48x48 crops (validation on whole frames)" in proc.stdout
    return root, data, root / "run" / "ckpt" / "last.ckpt"


def deployment_frames(path, count=2):
    """``count`` rain-cell sequences of T_IN + T_OUT frames of DEPLOY_H x DEPLOY_W dBZ, saved to ``path``
    (another seed than the training data: a deployment domain the model never saw)."""
    frames = RainCells(count, T_IN + T_OUT, DEPLOY_W, seed=11).block(0, count)[..., :DEPLOY_H, :]
    np.save(path, frames)  # (N, T, 1, DEPLOY_H, DEPLOY_W)
    return frames


def normalised_inputs(frames):
    """Observed frames in [0, 1] as the model reads dBZ data (data_min -10, data_max 60)."""
    return np.clip((frames[:, :T_IN] + 10.0) / 70.0, 0.0, 1.0).astype(np.float32)


def mindir_and_checkpoint_predictions(mindir, ckpt, x):
    """(MINDIR prediction with mindspore.load + nn.GraphCell, checkpoint network's prediction) of ``x``."""
    import mindspore as ms
    from mindspore import nn

    from src.checkpoint import load_network_from_checkpoint

    previous = ms.get_context("mode")
    try:
        ms.set_context(mode=ms.GRAPH_MODE)
        exported = nn.GraphCell(ms.load(str(mindir)))(ms.Tensor(x)).asnumpy()
        ms.set_context(mode=ms.PYNATIVE_MODE)
        net, _ = load_network_from_checkpoint(str(ckpt))
        expected = net(ms.Tensor(x)).asnumpy()
    finally:
        ms.set_context(mode=previous)
    return exported, expected


def test_a_crop_trained_model_scores_and_exports_the_whole_domain(crop_run, tmp_path):
    root, data, ckpt = crop_run
    from src.checkpoint import read_checkpoint_config
    stored = read_checkpoint_config(str(ckpt))
    assert (stored.frame_height, stored.frame_width, stored.crop_size) == (96, 96, 48)

    ok("eval.py", "--ckpt_file", ckpt, "--save_vis", 1, "--output_dir", tmp_path / "eval")
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["num_sequences"] == 2 and np.isfinite(report["mse"])

    proc = ok("export.py", "--ckpt_file", ckpt, "--file_name", tmp_path / "model", "--file_format", "MINDIR")
    assert "frames: 1x96x96 (C x H x W), the checkpoint's, trained on 48x48 crops" in proc.stdout
    window = normalised_inputs(np.load(data)[:1])  # one whole 96x96 window, observed frames
    exported, expected = mindir_and_checkpoint_predictions(tmp_path / "model.mindir", ckpt, window)
    assert exported.shape == expected.shape == (1, T_OUT, 1, 96, 96)
    assert np.abs(exported - expected).max() <= TOLERANCE
    assert np.ptp(expected) > 1e-3  # a prediction that depends on the pixels, not a constant

    np.save(tmp_path / "inputs.npy", np.load(data)[:3, :T_IN])  # whole 96x96 frames, observed only
    proc = ok("predict.py", "--mindir_file", tmp_path / "model.mindir", "--ckpt_file", ckpt, "--input",
              tmp_path / "inputs.npy", "--output_dir", tmp_path / "predict")
    assert "parity: max |exported - checkpoint|" in proc.stdout
    assert np.load(tmp_path / "predict" / "predictions.npy").shape == (3, T_OUT, 1, 96, 96)


def test_an_export_for_a_larger_deployment_frame_predicts_what_the_checkpoint_does(crop_run, tmp_path):
    root, _, ckpt = crop_run
    proc = ok("export.py", "--ckpt_file", ckpt, "--file_name", tmp_path / "deployed", "--export_height", DEPLOY_H,
              "--export_width", DEPLOY_W, "--check", "true")
    assert f"input : (1, {T_IN}, 1, {DEPLOY_H}, {DEPLOY_W}) float32" in proc.stdout
    assert ("frames: 1x144x192 (C x H x W), the deployment frame (--export_height/--export_width; the checkpoint's: "
            "1x96x96, trained on 48x48 crops)") in proc.stdout
    assert "parity: max |exported - checkpoint|" in proc.stdout

    from src.export.model_info import read_mindir_info
    info = read_mindir_info(str(tmp_path / "deployed.mindir"))
    assert info.input_shape == (1, T_IN, 1, DEPLOY_H, DEPLOY_W) and info.output_shape[-2:] == (DEPLOY_H, DEPLOY_W)
    assert (info.config.frame_height, info.config.frame_width) == (DEPLOY_H, DEPLOY_W)  # what its readers use
    assert (info.config.export_height, info.config.export_width, info.config.crop_size) == (0, 0, 48)
    assert info.data_record["frame_shape"] == [1, 96, 96]  # what it was trained on stays recorded

    wide = deployment_frames(tmp_path / "wide.npy")
    exported, expected = mindir_and_checkpoint_predictions(tmp_path / "deployed.mindir", ckpt,
                                                           normalised_inputs(wide[:1]))
    assert exported.shape == expected.shape == (1, T_OUT, 1, DEPLOY_H, DEPLOY_W)
    assert np.abs(exported - expected).max() <= TOLERANCE
    assert np.ptp(expected) > 1e-3

    np.save(tmp_path / "inputs.npy", wide[:, :T_IN])  # predict.py runs the checkpoint on the model's frames too
    proc = ok("predict.py", "--mindir_file", tmp_path / "deployed.mindir", "--ckpt_file", ckpt, "--input",
              tmp_path / "inputs.npy", "--output_dir", tmp_path / "predict")
    assert "parity: max |exported - checkpoint|" in proc.stdout
    assert np.load(tmp_path / "predict" / "predictions.npy").shape == (2, T_OUT, 1, DEPLOY_H, DEPLOY_W)


def test_onnx_and_the_310_data_path_read_the_deployment_frame(crop_run, tmp_path):
    root, _, ckpt = crop_run
    wide = tmp_path / "wide.npy"
    deployment_frames(wide)
    for fmt in ("ONNX", "MINDIR"):
        proc = ok("export.py", "--ckpt_file", ckpt, "--file_name", tmp_path / "deployed", "--file_format", fmt,
                  "--export_height", DEPLOY_H, "--export_width", DEPLOY_W, "--check", "true")
        assert f"input : (1, {T_IN}, 1, {DEPLOY_H}, {DEPLOY_W})" in proc.stdout

    proc = ok("eval_onnx.py", "--onnx_file", tmp_path / "deployed.onnx", "--data_path", wide, "--eval_split", "all",
              "--output_dir", tmp_path / "onnx")
    report = json.loads((tmp_path / "onnx" / "metrics.json").read_text())
    assert report["num_sequences"] == 2 and np.isfinite(report["mse"])
    assert "none of its 2 sequences is one" in report["data"]  # the deployment file: no sequence trained on
    assert (report["config"]["frame_height"], report["config"]["frame_width"]) == (DEPLOY_H, DEPLOY_W)

    proc = preprocess_for_310(tmp_path / "deployed.mindir", wide, tmp_path / "310")
    assert "preprocess done" in proc.stdout, proc.stdout + proc.stderr
    manifest = json.loads((tmp_path / "310" / "preprocess_Result" / "preprocess.json").read_text())
    assert manifest["input_shape"] == [1, T_IN, 1, DEPLOY_H, DEPLOY_W]
    assert manifest["label_shape"] == [T_OUT, 1, DEPLOY_H, DEPLOY_W]


def preprocess_for_310(mindir, data, workdir):
    """scripts/run_infer_310.sh with EVAL_SPLIT=all up to its first Ascend step: a Python that answers no
    ``python -c`` (the build's MindSpore probe) stops it after preprocess.py, which runs for real."""
    workdir.mkdir()
    python = workdir / "python"
    python.write_text(f'#!/bin/sh\n[ "$1" = "-c" ] && exit 1\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    env = dict(os.environ, PYTHON=str(python), EVAL_SPLIT="all", NUM_SEQUENCES="0", ASCEND_HOME=str(workdir))
    proc = subprocess.run(["bash", os.path.join(REPO, "scripts", "run_infer_310.sh"), str(mindir), str(data)],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "error: building ascend310_infer failed" in proc.stdout, proc.stdout
    return proc
