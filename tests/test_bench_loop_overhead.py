"""The loop benchmark's options, and its pre-read stand-in for the data pipeline."""
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

