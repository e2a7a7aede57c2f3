"""How many training steps fit a budget of minutes on THIS machine: the step count of a time-boxed run.

Usage (from the repository root):

    python bench/step_budget.py --minutes 12 [--epochs_of_run 8] [--config_path C] [--key value ...]

Builds the run's network, optimizer and compiled training step exactly as ``train.py`` does (the config and
overrides given), times ``--probe_steps`` steps on the run's own first training batches after one
compiling call, and prints on stdout the overrides that size the run: ``--steps_per_epoch S`` with
``S = floor(minutes * 60 / (step_s * epochs))`` (the run's ``epochs`` kept, so validation comes as often as
before). Everything else goes to stderr. The training itself stays a pure function of its config: the step
count is an ordinary override, stored in the run's config.yaml and checkpoints like any other key; a rerun
on another machine gets another count (the trade-off: the clock holds everywhere, the result depends on the
machine's speed). Used by ``bench/cpu_quality.sh``.
"""
import math
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from src.cli import overrides_argv, run_cli, split_options  # noqa: E402  pylint: disable=C0413
from src.config import COMMAND_LINE_KEYS, keys_help, load_config  # noqa: E402  pylint: disable=C0413
from src.errors import ConfigError  # noqa: E402  pylint: disable=C0413

DEFAULT_CONFIG = os.path.join(REPO, "configs", "cpu_small.yaml")
OPTIONS = {"minutes": None, "probe_steps": 8}


def parse_args(argv):
    """(minutes, probe_steps, the config overrides) of the command line."""
    own, overrides = split_options(argv, OPTIONS, COMMAND_LINE_KEYS)
    try:
        minutes, probe_steps = float(own["minutes"] or "nan"), int(own["probe_steps"])
    except ValueError:
        raise ConfigError("--minutes needs a number of minutes and --probe_steps a whole number") from None
    if not minutes > 0 or probe_steps < 1:
        raise ConfigError("--minutes must be > 0 (the training budget) and --probe_steps >= 1")
    return minutes, probe_steps, overrides


def measure_step_seconds(cfg, probe_steps):
    """(first call incl. compilation, median of ``probe_steps`` further calls) of the run's training step, s."""
    import mindspore as ms
    import numpy as np

    from src.data.pipeline import TrainingData, read_batch
    from src.device import effective_amp_level, init_device
    from src.models.mixed_precision import training_forward
    from src.models.network import build_network
    from src.training.sampling import rank_mask
    from src.training.step import build_optimizer, build_train_step

    data = TrainingData(cfg)
    init_device(cfg)
    ms.set_seed(cfg.seed)
    net = build_network(cfg)
    forward = training_forward(net, effective_amp_level(cfg), all_frames=cfg.loss_frames == "all")
    optimizer = build_optimizer(cfg, net)
    step = build_train_step(cfg, forward, optimizer)
    source = data.epoch_source(0, 1)
    times = []
    for k in range(probe_steps + 1):
        indices = np.arange(k * cfg.batch_size, (k + 1) * cfg.batch_size)
        inputs, targets = (ms.Tensor(a) for a in read_batch(source, indices))
        mask = ms.Tensor(rank_mask(cfg, k, 0, 1))
        start = time.perf_counter()
        step(inputs, targets, ms.Tensor(cfg.lr, ms.float32), mask)[0].asnumpy()
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:])


def main(argv):
    minutes, probe_steps, overrides = parse_args(argv)
    path = overrides.pop("config_path", DEFAULT_CONFIG)
    cfg = load_config(overrides_argv(overrides), config_path=path)
    first, step_s = measure_step_seconds(cfg, probe_steps)
    steps_per_epoch = max(1, math.floor(minutes * 60.0 / (step_s * cfg.epochs)))
    print(f"step_budget: {step_s * 1000:.0f} ms per step (median of {probe_steps}; first call {first:.1f} s "
          f"with compilation): {cfg.epochs} epochs x {steps_per_epoch} steps = {cfg.epochs * steps_per_epoch} steps "
          f"fill {minutes:g} minutes", file=sys.stderr, flush=True)
    print(f"--steps_per_epoch {steps_per_epoch}")
    return 0


if __name__ == "__main__":
    run_cli(main, doc=__doc__, options=OPTIONS, config_keys=keys_help)
