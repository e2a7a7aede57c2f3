"""Forecasts past the trained horizon (lead_frames) end to end: a model trained 3 -> 2 on rain cells gives an
8-frame forecast from its checkpoint, its MINDIR and its ONNX file (eval.py, eval_onnx.py, predict.py), scored
per lead frame next to persistence and extrapolation, and equal to its own forwards chained by hand."""
import json

import numpy as np
import pytest

from src.data.rain_cells import RainCells
from tests.test_own_data_end_to_end import DBZ, TINY, ok, one_error_line, run

T_IN, T_OUT, LEAD = 3, 2, 8
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(root, data file, checkpoint, mindir, onnx) of a tiny 3 -> 2 model of 16-frame 32x32 rain-cell sequences."""
    root = tmp_path_factory.mktemp("rollout")
    data = root / "rain.npy"
    np.save(data, RainCells(10, 16, 32, seed=2).block(0, 10))  # (10, 16, 1, 32, 32) dBZ
    ok("train.py", "--dataset", "sequences", "--data_path", data, *DBZ, "--input_frames", T_IN, "--output_frames",
       T_OUT, "--window_stride", 16, "--val_fraction", "0.2", "--test_fraction", "0.2", *TINY,
       "--thresholds", "[20,35]", "--output_dir", root / "run")
    ckpt = root / "run" / "ckpt" / "last.ckpt"
    for fmt in ("MINDIR", "ONNX"):
        ok("export.py", "--ckpt_file", ckpt, "--file_name", root / "model", "--file_format", fmt)
    return root, data, ckpt, root / "model.mindir", root / "model.onnx"


def _metrics(path):
    return json.loads(path.read_text())


def _forwards_by_hand(ckpt, inputs):
    """LEAD frames from the checkpoint's network, forward after forward, in this process."""
    from src.checkpoint import read_checkpoint_config
    from src.evaluation import checkpoint_predictor

    cfg = read_checkpoint_config(str(ckpt)).replace(mode="pynative", ckpt_file=str(ckpt))
    predictor = checkpoint_predictor(cfg, batch_size=2)
    frames, chunks = inputs, []
    while sum(c.shape[1] for c in chunks) < LEAD:
        chunks.append(predictor.predict(frames[:, -T_IN:]))  # (N, T_OUT, 1, H, W)
        frames = np.concatenate([frames, np.clip(chunks[-1], 0, 1)], axis=1)
    return np.concatenate(chunks, axis=1)[:, :LEAD]


def test_eval_scores_every_lead_frame_for_the_model_and_the_baselines(model, tmp_path):
    root, data, ckpt, _, _ = model
    proc = ok("eval.py", "--ckpt_file", ckpt, "--lead_frames", LEAD, "--output_dir", tmp_path / "long")
    assert f"forecast: {LEAD} lead frames, past the {T_OUT}" in proc.stdout
    report = _metrics(tmp_path / "long" / "metrics.json")
    assert report["lead_frames"] == LEAD and report["trained_output_frames"] == T_OUT and report["rollout"]
    assert len(report["per_frame"]["mse"]) == LEAD
    for name in ("model", "copy_last", "extrapolation"):
        skills = report["skill_scores"] if name == "model" else report["baselines"][name]["skill_scores"]
        assert skills["lead_frames"] == LEAD, name
        assert all(len(t["per_lead_frame"]["csi"]) == LEAD for t in skills["by_threshold"]), name
        if name != "model":
            assert len(report["baselines"][name]["per_frame"]["mse"]) == LEAD

    short = _metrics(ok("eval.py", "--ckpt_file", ckpt, "--output_dir", tmp_path / "short") and
                     tmp_path / "short" / "metrics.json")
    assert short["lead_frames"] == T_OUT and short["rollout"] == ""
    # the first chunk of the rollout is the model's own forecast: the same numbers on the same windows
    np.testing.assert_allclose(report["per_frame"]["mse"][:T_OUT], short["per_frame"]["mse"], rtol=1e-6)


def test_predict_rolls_out_from_the_checkpoint_mindir_and_onnx_alike(model, tmp_path):
    root, data, ckpt, mindir, onnx_file = model
    raw = np.load(data)[:2, :T_IN]  # (2, T_IN, 1, 32, 32) dBZ: observed frames only, no truth
    np.save(tmp_path / "inputs.npy", raw)
    outputs = {}
    for name, option in (("ckpt", ["--ckpt_file", ckpt]), ("mindir", ["--mindir_file", mindir, "--ckpt_file", ckpt]),
                         ("onnx", ["--onnx_file", onnx_file])):
        out = tmp_path / name
        proc = ok("predict.py", *option, "--input", tmp_path / "inputs.npy", "--lead_frames", LEAD,
                  "--output_dir", out)
        assert "forecast: 8 lead frames" in proc.stdout
        outputs[name] = np.load(out / "predictions.npy")  # (2, LEAD, 1, 32, 32) dBZ
        assert outputs[name].shape == (2, LEAD, 1, 32, 32), name
    inputs = np.clip((raw + 10) / 70, 0, 1).astype(np.float32)
    by_hand = np.clip(_forwards_by_hand(ckpt, inputs), 0, 1) * 70 - 10  # dBZ
    np.testing.assert_allclose(outputs["ckpt"], by_hand, atol=1e-3)
    np.testing.assert_allclose(outputs["mindir"], outputs["ckpt"], atol=1e-3)
    np.testing.assert_allclose(outputs["onnx"], outputs["ckpt"], atol=1e-3)


def test_eval_onnx_rolls_out_like_eval(model, tmp_path):
    root, data, ckpt, _, onnx_file = model
    ok("eval.py", "--ckpt_file", ckpt, "--lead_frames", LEAD, "--output_dir", tmp_path / "ckpt")
    ok("eval_onnx.py", "--onnx_file", onnx_file, "--lead_frames", LEAD, "--output_dir", tmp_path / "onnx")
    ours, theirs = (_metrics(tmp_path / d / "metrics.json") for d in ("ckpt", "onnx"))
    assert theirs["lead_frames"] == LEAD
    np.testing.assert_allclose(theirs["per_frame"]["mse"], ours["per_frame"]["mse"], rtol=1e-3)


def test_lead_frames_that_the_data_cannot_score_are_refused_in_one_line(model, tmp_path):
    root, data, ckpt, mindir, _ = model
    out = tmp_path / "out"
    line = one_error_line(run("eval.py", "--ckpt_file", ckpt, "--lead_frames", 14, "--output_dir", out))
    assert "16 frames" in line and "17" in line and "lead_frames" in line
    line = one_error_line(run("predict.py", "--mindir_file", mindir, "--bin_dir", tmp_path, "--lead_frames", LEAD,
                              "--output_dir", out))
    assert "--lead_frames does not apply to --bin_dir" in line
    line = one_error_line(run("eval.py", "--ckpt_file", ckpt, "--lead_frames", "-1", "--output_dir", out))
    assert "lead_frames" in line
    assert not out.exists()
