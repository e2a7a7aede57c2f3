"""Throughput of the training-data generator, alone and through the MindSpore pipeline.

Prints sequences per second; asserts nothing. Usage (from the repository root):
    python bench/data_throughput.py [--config_path configs/cpu_small.yaml] [--key value ...]
Extra: --bench_steps N (batches to time through the dataset, default 50).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.config import load_config  # noqa: E402
from src.data.pipeline import build_train_dataset, load_digits, train_source  # noqa: E402
from src.errors import run_cli  # noqa: E402


def _time_generator(source, count):
    start = time.perf_counter()
    for i in range(count):
        source[i]
    return count / (time.perf_counter() - start)


def _time_dataset(dataset, steps, batch_size):
    it = dataset.create_tuple_iterator(output_numpy=True, num_epochs=1)
    next(it)  # pipeline start-up is not throughput
    start = time.perf_counter()
    done = 0
    for _ in it:
        done += 1
        if done == steps:
            break
    return done * batch_size / (time.perf_counter() - start)


def main(argv):
    steps = 50
    if "--bench_steps" in argv:
        i = argv.index("--bench_steps")
        steps = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    cfg = load_config(argv)
    cfg = cfg.replace(steps_per_epoch=max(cfg.steps_per_epoch, steps + 1))
    start = time.perf_counter()
    digits = load_digits(cfg, "train")
    print(f"digits: {cfg.dataset}, {len(digits)} images in {time.perf_counter() - start:.2f} s")
    source = train_source(cfg, digits, epoch=0)
    count = min(len(source), steps * cfg.batch_size)
    print(f"generator alone (1 process, {cfg.num_digits_train} digits, {cfg.image_size}x{cfg.image_size}, "
          f"{cfg.input_frames}+{cfg.output_frames} frames): {_time_generator(source, count):.0f} sequences/s")
    for workers in sorted({1, cfg.num_workers}):
        dataset = build_train_dataset(cfg.replace(num_workers=workers), digits, epoch=0)
        rate = _time_dataset(dataset, steps, cfg.batch_size)
        print(f"GeneratorDataset, {workers} worker thread(s), batch {cfg.batch_size}: {rate:.0f} sequences/s")
    return 0


if __name__ == "__main__":
    run_cli(main)
