"""The real training loop against its own compiled step, in one process.

Usage (from the repository root):

    python bench/loop_overhead.py [--config_path configs/cpu_small.yaml] [--steps 40] [--rounds 5]
                                  [--wait_each_step true|false] [--pipeline on|off|on,off] [--key value ...]

Any further ``--key value`` overrides the config as on train.py's command line (e.g.
``--hidden_channels "[8,8]" --amp_on_cpu true`` for the Ascend/GPU recipes on this CPU).

A first loop epoch pays the graph compilation and is not timed. Then ``--rounds`` rounds alternate:

1. **loop**: ``src.training.trainer.Trainer`` (the object ``train.py`` builds) trains one more epoch
   of ``--steps`` steps, data pipeline, schedule, loss read-back and logging included, validation
   off and checkpoints into a temporary directory; its figure is the epoch's time (``epoch_time_s``
   of the history, which stops before checkpointing) divided by its steps.
2. **compiled step**: the same ``trainer.train_step`` called on the batches of the epoch just
   trained, read beforehand, each call waited for (``loss.asnumpy()``): no data pipeline, no
   bookkeeping. Mean per call.

Alternating matters: on this 2-core CPU the same command moves by +-10 % from run to run and drifts
within a run, so one loop epoch against one later compiled-step pass cannot decide 5 %; the median of
rounds that each time both, one right after the other, can.

``--wait_each_step`` replaces the loop's per-backend choice of waiting for every step
(``src.training.trainer.waits_each_step``: true on CPU), to measure the other design.
``--pipeline off`` feeds the loop each epoch's batches read beforehand (the data pipeline's workers
are then idle while the steps run): the loop's own cost without the data pipeline running beside it.
``--pipeline on,off`` runs one loop epoch of each kind per round (in turn first), an A/B of the data
pipeline inside one process; each kind then gets its own last line, prefixed ``pipeline on:`` / ``off:``.

The training loop's own log is kept off the output. Each round prints its figures, then
``loop: X ms/step, compiled step: Y ms/step, overhead: Z %``: the medians over the rounds so far (Z: the
median of the rounds' overheads), so the last line is the result, and a run stopped early ends on the
result of the rounds it finished.
Asserts nothing; the target (overhead <= 5 %) and the measured table are in bench/README.md.
"""
import contextlib
import io
import os
import platform
import sys
import tempfile
import time
from statistics import median

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DEFAULT_CONFIG = os.path.join(REPO, "configs", "cpu_small.yaml")
DEFAULT_STEPS = 40
DEFAULT_ROUNDS = 5


def _pop_option(argv, name, allowed, default):
    """Remove ``--name value`` from argv; the value must be one of ``allowed`` (strings)."""
    if name not in argv:
        return default
    i = argv.index(name)
    if i + 1 >= len(argv) or argv[i + 1] not in allowed:
        raise SystemExit(f"loop_overhead.py: {name} needs one of {', '.join(allowed[:3])}"
                         f"{', ...' if len(allowed) > 3 else ''}")
    value = argv[i + 1]
    del argv[i:i + 2]
    return value


def parse(argv):
    """(steps, rounds, wait_each_step or None, pipeline kinds ["on"|"off", ...], config argv): ``--steps``, ``--rounds``,
    ``--wait_each_step`` and ``--pipeline`` are this benchmark's own options, the rest go to the config."""
    argv = list(argv)
    steps = int(_pop_option(argv, "--steps", [str(n) for n in range(2, 100001)], str(DEFAULT_STEPS)))
    rounds = int(_pop_option(argv, "--rounds", [str(n) for n in range(1, 1001)], str(DEFAULT_ROUNDS)))
    wait = _pop_option(argv, "--wait_each_step", ["true", "false"], None)
    pipeline = _pop_option(argv, "--pipeline", ["on", "off", "on,off", "off,on"], "on")
    if "--config_path" not in argv:
        argv = ["--config_path", DEFAULT_CONFIG] + argv
    return steps, rounds, None if wait is None else wait == "true", pipeline.split(","), argv


class _ReadBeforehand:
    """A dataset whose batches were all read before the epoch starts."""

    def __init__(self, dataset):
        self.batches = list(dataset.create_tuple_iterator(num_epochs=1))

    def create_tuple_iterator(self, num_epochs=1):  # pylint: disable=unused-argument
        return iter(self.batches)


class PipelineSwitch:
    """Makes the trainer's ``build_rank_dataset`` (looked up in src.data.pipeline when an epoch starts) return
    the real data pipeline (``kind = "on"``) or batches read from it before the epoch (``"off"``)."""

    def __init__(self):
        from src.data import pipeline

        self.kind, build = "on", pipeline.build_rank_dataset
        pipeline.build_rank_dataset = lambda *args, **kwargs: (
            build(*args, **kwargs) if self.kind == "on" else _ReadBeforehand(build(*args, **kwargs)))


def cpu_model():
    """The processor's model name (/proc/cpuinfo), to name the machine next to the figures."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def build_trainer(argv, steps, rounds, output_dir):
    from src.config import load_config
    from src.training.trainer import Trainer

    cfg = load_config(argv, epochs=1 + rounds, steps_per_epoch=steps, val_sequences=0, log_every=steps,
                      output_dir=output_dir, overwrite=True, resume="", early_stop_patience=0,
                      save_every=1000)
    return Trainer(cfg)


def train_one_epoch(trainer):
    """ms/step of one more epoch of ``trainer.fit`` (its log kept off this benchmark's output)."""
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.fit(epochs=trainer.epoch + 1)
    return 1000.0 * trainer.history[-1]["epoch_time_s"] / trainer.cfg.steps_per_epoch


def compiled_step_ms(trainer, steps):
    """Mean time of one waited-for call of the trainer's compiled step, over the batches of the
    epoch just trained (read from the pipeline beforehand: the data are the same, their cost is not
    counted). The same batches, not one: on the CPU backend a step's time varies with the data
    (own radar-like sequences: 230-390 ms per step, measured), so one fixed batch is not the mean."""
    import mindspore as ms
    from src.data.pipeline import build_rank_dataset

    source = trainer.data.epoch_source(trainer.epoch - 1, trainer.ctx.group_size)  # the last epoch's sequences
    dataset = build_rank_dataset(trainer.cfg, source, trainer.ctx.rank, trainer.ctx.group_size)
    batches = list(dataset.create_tuple_iterator(num_epochs=1))  # [(B, T_in, C, H, W), (B, T_out, C, H, W)]
    lr = ms.Tensor(trainer.cfg.lr, ms.float32)
    trainer.train_step(*batches[0], lr)[0].asnumpy()  # already compiled by the loop; one warm call
    start = time.perf_counter()
    for inputs, targets in batches[:steps]:
        trainer.train_step(inputs, targets, lr)[0].asnumpy()
    return 1000.0 * (time.perf_counter() - start) / min(steps, len(batches))


def overhead_percent(loop, step):
    return 100.0 * (loop / step - 1)


def summary_lines(kinds, loops, compiled):
    """``loop: X ms/step, compiled step: Y ms/step, overhead: Z %`` per pipeline kind, medians over the rounds
    so far (Z: the median of the rounds' overheads)."""
    lines = []
    for kind in kinds:
        overheads = [overhead_percent(loop, step) for loop, step in zip(loops[kind], compiled)]
        prefix = "" if len(kinds) == 1 else f"pipeline {kind}: "
        lines.append(f"{prefix}loop: {median(loops[kind]):.1f} ms/step, compiled step: {median(compiled):.1f} "
                     f"ms/step, overhead: {median(overheads):.1f} %")
    return lines


def main(argv):
    steps, rounds, wait, kinds, config_argv = parse(argv)
    switch = PipelineSwitch()
    loops, compiled = {kind: [] for kind in kinds}, []
    with tempfile.TemporaryDirectory(prefix="loop_overhead_") as tmp:
        trainer = build_trainer(config_argv, steps, rounds * len(kinds), os.path.join(tmp, "run"))
        if wait is not None:
            trainer.wait_each_step = wait
        cfg = trainer.cfg
        print(f"machine: {cpu_model()}, {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.2f}; config {cfg.config_path or '(defaults)'}: arch {cfg.arch} "
              f"hidden {cfg.hidden_channels} batch {cfg.batch_size} amp {cfg.amp_level} loss_scale {cfg.loss_scale}; "
              f"{rounds} round(s) of {steps} steps each; loop waits for each step: {trainer.wait_each_step}; data "
              f"pipeline during the loop: {', '.join(kinds)}"
              f"{' (off: batches read beforehand)' if 'off' in kinds else ''}", flush=True)
        switch.kind = kinds[0]
        train_one_epoch(trainer)  # compiles the step; not timed
        for k in range(rounds):
            for kind in kinds if k % 2 == 0 else kinds[::-1]:
                switch.kind = kind
                loops[kind].append(train_one_epoch(trainer))
            compiled.append(compiled_step_ms(trainer, steps))
            figures = ", ".join(f"loop{'' if len(kinds) == 1 else ' (pipeline ' + kind + ')'} {loops[kind][-1]:.1f} "
                                f"({overhead_percent(loops[kind][-1], compiled[-1]):+.1f} %)" for kind in kinds)
            print(f"round {k + 1}/{rounds}: {figures}, compiled step {compiled[-1]:.1f} ms/step; medians so far:",
                  flush=True)
            print("\n".join(summary_lines(kinds, loops, compiled)), flush=True)  # last lines even if stopped early
    return 0


if __name__ == "__main__":
    from src.cli import run_cli
    from src.config import keys_help

    run_cli(main, config_keys=keys_help)
