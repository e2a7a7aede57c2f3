"""The loop benchmark's options, its pre-read stand-in for the data pipeline, and one tiny whole run."""
import re
import subprocess
import sys

import pytest

from bench import loop_overhead
from src.data import pipeline


def test_parse_takes_its_own_options_and_passes_the_rest_to_the_config():
    steps, rounds, wait, pipeline_on, argv = loop_overhead.parse(
        ["--steps", "7", "--pipeline", "off", "--rounds", "5", "--batch_size", "2"])
    assert (steps, rounds, wait, pipeline_on) == (7, 5, None, ["off"])
    assert argv == ["--config_path", loop_overhead.DEFAULT_CONFIG, "--batch_size", "2"]
    assert loop_overhead.parse(["--wait_each_step", "false"])[1:4] == (loop_overhead.DEFAULT_ROUNDS, False, ["on"])
    assert loop_overhead.parse(["--pipeline", "on,off"])[3] == ["on", "off"]


@pytest.mark.parametrize("argv", [["--pipeline", "maybe"], ["--steps", "1"], ["--rounds", "0"],
                                  ["--wait_each_step"]])
def test_bad_options_exit_with_one_line(argv):
    with pytest.raises(SystemExit, match="loop_overhead.py: --"):
        loop_overhead.parse(argv)


class _CountingDataset:
    def __init__(self, batches):
        self.batches, self.reads = batches, 0

    def create_tuple_iterator(self, num_epochs=1):
        self.reads += 1
        return iter(self.batches)


def test_pipeline_switch_reads_every_batch_before_the_epoch_when_off(monkeypatch):
    made = []

    def build(*args, **kwargs):
        made.append(_CountingDataset([("x0", "y0"), ("x1", "y1")]))
        return made[-1]

    monkeypatch.setattr(pipeline, "build_rank_dataset", build)
    switch = loop_overhead.PipelineSwitch()
    assert pipeline.build_rank_dataset("cfg", "source", 0, 1) is made[-1]  # on: the real pipeline
    switch.kind = "off"
    dataset = pipeline.build_rank_dataset("cfg", "source", 0, 1, start_step=0)
    assert made[1].reads == 1  # read once, when the epoch's dataset is built
    assert list(dataset.create_tuple_iterator(num_epochs=1)) == [("x0", "y0"), ("x1", "y1")]
    assert made[1].reads == 1



def test_a_tiny_run_prints_each_round_and_the_medians_last():
    """The benchmark's whole path on a 4-channel network: rounds alternate and the last lines hold the medians."""
    proc = subprocess.run(
        [sys.executable, "bench/loop_overhead.py", "--config_path", "configs/cpu_small.yaml", "--dataset", "synthetic",
         "--hidden_channels", "[4]", "--input_frames", "2", "--output_frames", "2", "--batch_size", "1",
         "--steps", "3", "--rounds", "2", "--pipeline", "on,off"],
        cwd=loop_overhead.REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert sum(line.startswith("round ") for line in lines) == 2
    figure = r"loop: (\d+\.\d) ms/step, compiled step: (\d+\.\d) ms/step, overhead: (-?\d+\.\d) %"
    last = [re.fullmatch(rf"pipeline {kind}: {figure}", line) for kind, line in zip(("on", "off"), lines[-2:])]
    assert all(last), lines[-2:]
    rounds = [float(re.search(r"compiled step (\d+\.\d) ms/step", line).group(1))
              for line in lines if line.startswith("round ")]
    for match in last:
        loop, step, _ = map(float, match.groups())
        assert loop > 0 and abs(step - sum(rounds) / 2) <= 0.11  # one reference: the median of both rounds
