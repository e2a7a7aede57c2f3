"""Throughput of the training-data generator, alone and through the MindSpore pipeline.

Prints sequences per second; asserts nothing. Usage (from the repository root):
    python bench/data_throughput.py [--config_path configs/cpu_small.yaml] [--key value ...]
Extra options:
    --bench_steps N      batches per measurement (default 300)
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

from src.config import load_config  # noqa: E402
from src.data.pipeline import build_train_dataset, load_digits, read_batch, train_source  # noqa: E402
from src.errors import ConfigError, run_cli  # noqa: E402

WORKER_TYPES = ("thread", "process")


def _time_generator(source, batch_size, batches):
    """Sequences/s of read_batch over consecutive batches, in this process."""
    read_batch(source, np.arange(batch_size))  # first call: imports and caches are not throughput
    start = time.perf_counter()
    for b in range(batches):
        read_batch(source, np.arange(b * batch_size, (b + 1) * batch_size))
    return batches * batch_size / (time.perf_counter() - start)


def _time_dataset(dataset, batches, batch_size):
    """Sequences/s through the dataset iterator, after its first batch (start-up is not throughput)."""
    it = dataset.create_tuple_iterator(output_numpy=True, num_epochs=1)
    next(it)
    start = time.perf_counter()
    done = 0
    for _ in it:
        done += 1
        if done == batches:
            break
    return done * batch_size / (time.perf_counter() - start)


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
    workers, argv = _pop_option(argv, "--bench_workers", None)
    if not steps.isdigit() or int(steps) < 1:
        raise ConfigError(f"--bench_steps must be a positive integer, got {steps!r}")
    steps = int(steps)
    cfg = load_config(argv)
    cfg = cfg.replace(steps_per_epoch=max(cfg.steps_per_epoch, steps + 1))
    settings = _worker_settings(workers, cfg)
    start = time.perf_counter()
    digits = load_digits(cfg, "train")
    print(f"digits: {cfg.dataset}, {len(digits)} images in {time.perf_counter() - start:.2f} s")
    print(f"sequences: {cfg.num_digits_train} digits, {cfg.image_size}x{cfg.image_size}, "
          f"{cfg.input_frames}+{cfg.output_frames} frames, batch {cfg.batch_size}; {steps} batches per measurement; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    source = train_source(cfg, digits, epoch=0)
    generator = _time_generator(source, cfg.batch_size, steps)
    rates = {}
    for kind, count in settings:
        dataset = build_train_dataset(cfg.replace(worker_type=kind, num_workers=count), digits, epoch=0)
        rates[kind, count] = _time_dataset(dataset, steps, cfg.batch_size)
        print(f"dataset, {count} {kind} worker(s): {rates[kind, count]:.0f} sequences/s")
    best = max(rates, key=rates.get)
    print(f"best: {best[1]} {best[0]} worker(s); configured: {cfg.num_workers} {cfg.worker_type} worker(s)")
    print(f"generator: {generator:.0f} sequences/s (1 process)")
    print(f"pipeline: {rates[cfg.worker_type, cfg.num_workers]:.0f} sequences/s ({cfg.num_workers} workers)")
    return 0


if __name__ == "__main__":
    run_cli(main)
