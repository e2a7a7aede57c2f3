"""bench/cpu_quality.sh as a whole, on a tiny network: a time-boxed run sized by bench/step_budget.py, then
the evaluation of its best checkpoint on the held-out generated set next to the baselines."""
import os
import re
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--arch", "stacked", "--hidden_channels", "4", "--kernel_size", "3", "--image_size", "32", "--input_frames",
        "3", "--output_frames", "2", "--batch_size", "2", "--epochs", "2", "--val_sequences", "2", "--num_workers", "1"]


@pytest.mark.slow
def test_time_boxed_run_trains_the_budgeted_steps_and_reports_the_table(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, TRAIN_MINUTES="0.05")
    done = subprocess.run(["bash", os.path.join(REPO, "bench", "cpu_quality.sh"), str(tmp_path / "q"), *TINY],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    budget = re.search(r"step_budget: \d+ ms per step .*: 2 epochs x (\d+) steps", done.stderr)
    assert budget, done.stderr[-2000:]
    run = yaml.safe_load(open(tmp_path / "q" / "config.yaml"))
    assert run["steps_per_epoch"] == int(budget.group(1)) and run["arch"] == "stacked"
    total = re.search(r"^2 x (\d+) = (\d+) steps; wall time: \d+ s to the end of training, \d+ s in all",
                      done.stdout, flags=re.M)
    assert total and int(total.group(1)) == run["steps_per_epoch"], done.stdout[-2000:]
    rows = [line.split("|")[1].strip() for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows == ["predictor", "model", "copy_last", "zeros"], done.stdout[-2000:]
