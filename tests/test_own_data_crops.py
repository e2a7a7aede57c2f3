"""Large domains (crop_size): a model trained on 16x16 random crops of 32x32 rain-cell frames scores whole
32x32 windows from its checkpoint, and its MINDIR export of the whole frame predicts what the checkpoint does."""
import json

import numpy as np
import pytest

from src.data.rain_cells import RainCells
from tests.test_own_data_end_to_end import DBZ, TINY, ok

pytestmark = pytest.mark.slow


def test_a_crop_trained_model_scores_and_exports_the_whole_domain(tmp_path):
    data = tmp_path / "rain.npy"
    np.save(data, RainCells(10, 5, 32, seed=4).block(0, 10))  # (10, 5, 1, 32, 32) dBZ
    proc = ok("train.py", "--dataset", "sequences", "--data_path", data, *DBZ, "--input_frames", 3, "--output_frames",
              2, "--val_fraction", "0.2", "--test_fraction", "0.2", *TINY, "--crop_size", 16,
              "--output_dir", tmp_path / "run")
    assert "trained on random 16x16 crops (validation on whole frames)" in proc.stdout
    ckpt = tmp_path / "run" / "ckpt" / "last.ckpt"

    from src.checkpoint import read_checkpoint_config
    stored = read_checkpoint_config(str(ckpt))
    assert (stored.frame_height, stored.frame_width, stored.crop_size) == (32, 32, 16)

    ok("eval.py", "--ckpt_file", ckpt, "--save_vis", 1, "--output_dir", tmp_path / "eval")
    report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert report["num_sequences"] == 2 and np.isfinite(report["mse"])

    ok("export.py", "--ckpt_file", ckpt, "--file_name", tmp_path / "model", "--file_format", "MINDIR")
    np.save(tmp_path / "inputs.npy", np.load(data)[:3, :3])  # whole 32x32 frames, observed only
    proc = ok("predict.py", "--mindir_file", tmp_path / "model.mindir", "--ckpt_file", ckpt, "--input",
              tmp_path / "inputs.npy", "--output_dir", tmp_path / "predict")
    assert "parity: max |exported - checkpoint|" in proc.stdout
    assert np.load(tmp_path / "predict" / "predictions.npy").shape == (3, 2, 1, 32, 32)
