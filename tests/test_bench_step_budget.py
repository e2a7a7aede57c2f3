"""bench/step_budget.py: the step count of a time-boxed run, from the run's own compiled step."""
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "bench", "step_budget.py")
TINY = ["--arch", "stacked", "--hidden_channels", "4", "--kernel_size", "3", "--image_size", "32", "--input_frames",
        "3", "--output_frames", "2", "--batch_size", "2", "--epochs", "2", "--sampling", "scheduled",
        "--loss_frames", "all", "--num_workers", "1"]


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_prints_the_steps_per_epoch_that_fill_the_budget():
    done = run("--minutes", "0.2", "--probe_steps", "3", *TINY)
    assert done.returncode == 0, done.stderr[-2000:]
    steps = int(re.fullmatch(r"--steps_per_epoch (\d+)\n", done.stdout).group(1))
    line = re.search(r"step_budget: (\d+) ms per step .*: 2 epochs x (\d+) steps = (\d+) steps fill 0.2 minutes",
                     done.stderr)
    assert line, done.stderr[-2000:]
    ms_per_step = int(line.group(1))
    assert int(line.group(2)) == steps and int(line.group(3)) == 2 * steps
    # the count fills the budget: one more step per epoch would exceed it (up to the printed rounding)
    assert 2 * steps * (ms_per_step - 1) <= 12_000 < 2 * (steps + 1) * (ms_per_step + 1)


def test_bad_budget_and_bad_key_are_one_line_errors():
    done = run("--minutes", "0", *TINY)
    assert done.returncode != 0 and "--minutes must be > 0" in done.stderr
    done = run("--minutes", "1", "--no_such_key", "1")
    assert done.returncode != 0 and "no_such_key" in done.stderr and "Traceback" not in done.stderr
