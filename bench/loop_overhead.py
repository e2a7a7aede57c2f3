"""The real training loop against its own compiled step, in one process.

Usage (from the repository root):

    python bench/loop_overhead.py [--config_path configs/cpu_small.yaml] [--steps 40]
                                  [--wait_each_step true|false] [--pipeline on|off] [--key value ...]

Any further ``--key value`` overrides the config as on train.py's command line (e.g.
``--hidden_channels "[8,8]" --amp_on_cpu true`` for the Ascend/GPU recipes on this CPU).

1. **loop**: ``src.training.trainer.Trainer`` (the object ``train.py`` builds) trains
   2 epochs of ``--steps`` steps each, data pipeline, schedule, loss read-back and logging
   included, validation off and checkpoints into a temporary directory. Epoch 1 pays the
   graph compilation; the loop figure is epoch 2's time (``epoch_time_s`` of the history,
   which stops before validation and checkpointing) divided by its steps.
2. **compiled step**: the same ``trainer.train_step`` called on the same ``--steps`` batches,
   read beforehand, each call waited for (``loss.asnumpy()``): no data pipeline, no
   bookkeeping. Mean per call.

``--wait_each_step`` replaces the loop's per-backend choice of waiting for every step
(``src.training.trainer.waits_each_step``: true on CPU), to measure the other design.
``--pipeline off`` feeds the loop each epoch's batches read beforehand (the data pipeline's workers
are then idle while the steps run): the loop's own cost without the data pipeline running beside it.

The last line printed is ``loop: X ms/step, compiled step: Y ms/step, overhead: Z %``.
Asserts nothing; the target (overhead <= 5 %) and the measured table are in bench/README.md.
"""
import os
import platform
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DEFAULT_CONFIG = os.path.join(REPO, "configs", "cpu_small.yaml")
DEFAULT_STEPS = 40


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
    """(steps, wait_each_step or None, config argv): ``--steps`` and ``--wait_each_step`` are this
    benchmark's own options, the rest go to the config."""
    argv = list(argv)
    steps = int(_pop_option(argv, "--steps", [str(n) for n in range(2, 100001)], str(DEFAULT_STEPS)))
    wait = _pop_option(argv, "--wait_each_step", ["true", "false"], None)
    pipeline = _pop_option(argv, "--pipeline", ["on", "off"], "on")
    if "--config_path" not in argv:
        argv = ["--config_path", DEFAULT_CONFIG] + argv
    return steps, None if wait is None else wait == "true", pipeline == "on", argv


class _ReadBeforehand:
    """A dataset whose batches were all read before the epoch starts."""

    def __init__(self, dataset):
        self.batches = list(dataset.create_tuple_iterator(num_epochs=1))

    def create_tuple_iterator(self, num_epochs=1):  # pylint: disable=unused-argument
        return iter(self.batches)


def read_batches_beforehand():
    """Make the trainer's ``build_rank_dataset`` (imported when an epoch starts) return read batches."""
    from src.data import pipeline

    build = pipeline.build_rank_dataset
    pipeline.build_rank_dataset = lambda *args, **kwargs: _ReadBeforehand(build(*args, **kwargs))


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


def build_trainer(argv, steps, output_dir):
    from src.config import load_config
    from src.training.trainer import Trainer

    cfg = load_config(argv, epochs=2, steps_per_epoch=steps, val_sequences=0, log_every=steps,
                      output_dir=output_dir, overwrite=True, resume="", early_stop_patience=0,
                      save_every=1000)
    return Trainer(cfg)


def loop_ms_per_step(trainer):
    trainer.fit()
    epoch_2 = trainer.history[-1]
    return 1000.0 * epoch_2["epoch_time_s"] / trainer.cfg.steps_per_epoch


def compiled_step_ms(trainer, steps):
    """Mean time of one waited-for call of the trainer's compiled step, over the batches of the
    loop's timed epoch (read from the pipeline beforehand: the data are the same, their cost is not
    counted). The same batches, not one: on the CPU backend a step's time varies with the data
    (own radar-like sequences: 230-390 ms per step, measured), so one fixed batch is not the mean."""
    import mindspore as ms
    from src.data.pipeline import build_rank_dataset

    source = trainer.data.epoch_source(1, trainer.ctx.group_size)  # epoch 2's sequences
    dataset = build_rank_dataset(trainer.cfg, source, trainer.ctx.rank, trainer.ctx.group_size)
    batches = list(dataset.create_tuple_iterator(num_epochs=1))  # [(B, T_in, C, H, W), (B, T_out, C, H, W)]
    lr = ms.Tensor(trainer.cfg.lr, ms.float32)
    trainer.train_step(*batches[0], lr)[0].asnumpy()  # already compiled by the loop; one warm call
    start = time.perf_counter()
    for inputs, targets in batches[:steps]:
        trainer.train_step(inputs, targets, lr)[0].asnumpy()
    return 1000.0 * (time.perf_counter() - start) / min(steps, len(batches))


def main(argv):
    steps, wait, pipeline_on, config_argv = parse(argv)
    if not pipeline_on:
        read_batches_beforehand()
    with tempfile.TemporaryDirectory(prefix="loop_overhead_") as tmp:
        trainer = build_trainer(config_argv, steps, os.path.join(tmp, "run"))
        if wait is not None:
            trainer.wait_each_step = wait
        loop = loop_ms_per_step(trainer)
        step = compiled_step_ms(trainer, steps)
    cfg = trainer.cfg
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}; config {cfg.config_path or '(defaults)'}: arch {cfg.arch} "
          f"hidden {cfg.hidden_channels} batch {cfg.batch_size} amp {cfg.amp_level} loss_scale {cfg.loss_scale}; "
          f"{steps} steps each; loop waits for each step: {trainer.wait_each_step}; data pipeline during the "
          f"loop: {'on' if pipeline_on else 'off (batches read beforehand)'}", flush=True)
    print(f"loop: {loop:.1f} ms/step, compiled step: {step:.1f} ms/step, overhead: {100.0 * (loop / step - 1):.1f} %",
          flush=True)
    return 0


if __name__ == "__main__":
    from src.errors import run_cli

    run_cli(main)
