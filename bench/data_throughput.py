"""Throughput of the training-data generator, alone and through the MindSpore pipeline.

Prints sequences per second (the best of --bench_repeats runs: on a shared machine the fastest
run is the one least slowed by other jobs); asserts nothing. Usage (from the repository root):
    python bench/data_throughput.py [--config_path configs/cpu_small.yaml] [--key value ...]
Extra options:
    --bench_steps N      batches per measurement (default 300)
    --bench_repeats R    measurements per figure, the best is printed (default 3)
    --bench_workers L    worker settings to compare, e.g. thread:1,thread:2,process:2 (default:
                         thread and process, each with 1 and num_workers workers)
The last two lines are the figures of record: the batch generator in this process, and the
training dataset with the configured worker_type and num_workers.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.cli import run_cli  # noqa: E402
from src.config import keys_help, load_config  # noqa: E402
from src.data.pipeline import build_rank_dataset, load_digits, read_batch, train_source  # noqa: E402
from src.errors import ConfigError  # noqa: E402

WORKER_TYPES = ("thread", "process")
# batches consumed before timing a dataset: its workers fill queues of prefetched batches while
# the pipeline starts (seen after a pause: ~20 batches with one thread, 120 or more with two), and reading
# those would time the queue instead of the workers
WARMUP_BATCHES = 150
STALL_S = 0.05  # a batch that takes longer than this to arrive counts as a stall


def _time_generator(source, batch_size, batches):
    """Sequences/s of read_batch over consecutive batches, in this process."""
    read_batch(source, np.arange(batch_size))  # first call: imports and caches are not throughput
    start = time.perf_counter()
    for b in range(batches):
        read_batch(source, np.arange(b * batch_size, (b + 1) * batch_size))
    return batches * batch_size / (time.perf_counter() - start)


def _time_dataset(dataset, batches, batch_size):
    """(sequences/s, stalls) through the dataset iterator once its start-up queues are drained.

    The iterator yields MindSpore tensors, as the training loop consumes them. With more than
    one worker, MindSpore 2.8 waits in steps of 0.1 s whenever the next worker's result queue
    is empty: a consumer faster than the workers then sees stalls, counted here.
    """
    it = dataset.create_tuple_iterator(num_epochs=1)
    for _ in range(WARMUP_BATCHES):
        next(it)
    stalls = 0
    start = last = time.perf_counter()
    for _ in range(batches):
        next(it)
        now = time.perf_counter()
        stalls += now - last > STALL_S
        last = now
    return batches * batch_size / (last - start), stalls


def _best_of(repeats, measure):
    return max(measure() for _ in range(repeats))


def _positive_int(name, text):
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{name} must be a positive integer, got {text!r}")
    return int(text)


def _pop_option(argv, name, default):
    """Remove ``--name value`` from argv; returns (value, remaining argv)."""
    if name not in argv:
        return default, argv
    i = argv.index(name)
    if i + 1 >= len(argv):
        raise ConfigError(f"{name} needs a value")
    return argv[i + 1], argv[:i] + argv[i + 2:]


def _worker_settings(text, cfg):
    """"thread:1,process:2" -> [("thread", 1), ("process", 2)]; always includes the configured setting."""
    if text is None:
        settings = [(kind, n) for kind in WORKER_TYPES for n in sorted({1, cfg.num_workers})]
    else:
        settings = []
        for item in filter(None, text.split(",")):
            kind, _, count = item.partition(":")
            if kind not in WORKER_TYPES or not count.isdigit() or int(count) < 1:
                raise ConfigError(f"--bench_workers: {item!r} is not TYPE:COUNT with TYPE thread or process and "
                                  "COUNT >= 1 (e.g. thread:2,process:2)")
            settings.append((kind, int(count)))
    configured = (cfg.worker_type, cfg.num_workers)
    return settings if configured in settings else settings + [configured]


def main(argv):
    steps, argv = _pop_option(list(argv), "--bench_steps", "300")
    repeats, argv = _pop_option(argv, "--bench_repeats", "3")
    workers, argv = _pop_option(argv, "--bench_workers", None)
    steps, repeats = _positive_int("--bench_steps", steps), _positive_int("--bench_repeats", repeats)
    cfg = load_config(argv)
    cfg = cfg.replace(steps_per_epoch=max(cfg.steps_per_epoch, WARMUP_BATCHES + steps))
    settings = _worker_settings(workers, cfg)
    start = time.perf_counter()
    digits = load_digits(cfg, "train")
    print(f"digits: {cfg.dataset}, {len(digits)} images in {time.perf_counter() - start:.2f} s")
    print(f"sequences: {cfg.num_digits_train} digits, {cfg.image_size}x{cfg.image_size}, "
          f"{cfg.input_frames}+{cfg.output_frames} frames, batch {cfg.batch_size}; best of {repeats} x {steps} "
          f"batches; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    source = train_source(cfg, digits, epoch=0)
    generator = _best_of(repeats, lambda: _time_generator(source, cfg.batch_size, steps))
    rates = {}
    for kind, count in settings:
        setting = cfg.replace(worker_type=kind, num_workers=count)
        rate, stalls = _best_of(repeats, lambda: _time_dataset(
            build_rank_dataset(setting, train_source(setting, digits, 0)), steps, cfg.batch_size))
        rates[kind, count] = rate
        print(f"dataset, {count} {kind} worker(s): {rate:.0f} sequences/s ({stalls} stalls > {STALL_S:g} s)")
    best = max(rates, key=rates.get)
    print(f"best: {best[1]} {best[0]} worker(s); configured: {cfg.num_workers} {cfg.worker_type} worker(s)")
    print(f"generator: {generator:.0f} sequences/s (1 process)")
    print(f"pipeline: {rates[cfg.worker_type, cfg.num_workers]:.0f} sequences/s ({cfg.num_workers} workers)")
    return 0


if __name__ == "__main__":
    run_cli(main, config_keys=keys_help)
