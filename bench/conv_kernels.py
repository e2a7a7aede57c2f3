"""Single convolutions (and a GroupNorm) of the zoo network's shapes, MindSpore next to PyTorch.

    python bench/conv_kernels.py [--threads 2] [--repeats 5]

Each framework runs in its own subprocess. MindSpore ops run in PYNATIVE mode, one call at a
time, so its figures include per-op dispatch; PyTorch runs eager with ``--threads`` intra-op
threads. Prints a markdown table of median milliseconds (forward, and forward + backward of the
sum). Asserts nothing; needs ``pip install -r bench/requirements.txt`` for the PyTorch column.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# name -> (input shape, weight shape (out, in, k, k)); "same" padding
CASES = {
    "state 64 -> 256 5x5 at 64x64, batch 2": ((2, 64, 64, 64), (256, 64, 5, 5)),
    "input 16 -> 256 5x5 at 64x64, 20 frames": ((20, 16, 64, 64), (256, 16, 5, 5)),
    "state 96 -> 384 5x5 at 32x32, batch 2": ((2, 96, 32, 32), (384, 96, 5, 5)),
    "input 64 -> 384 5x5 at 32x32, 20 frames": ((20, 64, 32, 32), (384, 64, 5, 5)),
}
NORM_CASE = "GroupNorm(8, 256) at 64x64, batch 2"
NORM_SHAPE = (2, 256, 64, 64)


def median_ms(fn, repeats):
    """Median wall time of ``fn`` in ms after two warm-up calls."""
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1000, 1)


def run_torch(args, rng):
    import torch

    torch.set_num_threads(args.threads)
    out = {}
    for name, (x_shape, w_shape) in CASES.items():
        x = torch.tensor(rng.random(x_shape, dtype="float32"), requires_grad=True)
        w = torch.tensor(rng.random(w_shape, dtype="float32"), requires_grad=True)
        pad = w_shape[-1] // 2
        forward = lambda: torch.nn.functional.conv2d(x, w, padding=pad)  # noqa: E731
        out[name] = (median_ms(forward, args.repeats), median_ms(lambda: forward().sum().backward(), args.repeats))
    norm = torch.nn.GroupNorm(8, NORM_SHAPE[1])
    x = torch.tensor(rng.random(NORM_SHAPE, dtype="float32"), requires_grad=True)
    out[NORM_CASE] = (median_ms(lambda: norm(x), args.repeats),
                      median_ms(lambda: norm(x).sum().backward(), args.repeats))
    return out


def run_mindspore(args, rng):
    import mindspore as ms
    from mindspore import nn

    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")
    out = {}
    for name, (x_shape, w_shape) in CASES.items():
        conv = nn.Conv2d(w_shape[1], w_shape[0], w_shape[-1], pad_mode="pad", padding=w_shape[-1] // 2,
                         has_bias=False)
        x = ms.Tensor(rng.random(x_shape, dtype="float32"))
        grad = ms.value_and_grad(lambda a: conv(a).sum(), 0, conv.trainable_params())
        out[name] = (median_ms(lambda: conv(x).asnumpy(), args.repeats),
                     median_ms(lambda: grad(x)[0].asnumpy(), args.repeats))
    norm = nn.GroupNorm(8, NORM_SHAPE[1])
    x = ms.Tensor(rng.random(NORM_SHAPE, dtype="float32"))
    grad = ms.value_and_grad(lambda a: norm(a).sum(), 0, norm.trainable_params())
    out[NORM_CASE] = (median_ms(lambda: norm(x).asnumpy(), args.repeats),
                      median_ms(lambda: grad(x)[0].asnumpy(), args.repeats))
    return out


def worker(args):
    import numpy as np

    rng = np.random.default_rng(0)
    result = {"torch": run_torch, "mindspore": run_mindspore}[args.worker](args, rng)
    print(json.dumps(result))


def spawn(framework, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--threads", str(args.threads),
           "--repeats", str(args.repeats)]
    env = dict(os.environ, GLOG_v=os.environ.get("GLOG_v", "3"))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:200]}
    return json.loads(lines[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch intra-op threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", choices=("torch", "mindspore"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    results = {fw: spawn(fw, args) for fw in ("torch", "mindspore")}
    print("| operation | PyTorch fwd / fwd+bwd ms | MindSpore (PYNATIVE) fwd / fwd+bwd ms |")
    print("|---|---|---|")
    for name in list(CASES) + [NORM_CASE]:
        cells = []
        for fw in ("torch", "mindspore"):
            r = results[fw]
            cells.append(r["error"] if "error" in r else f"{r[name][0]} / {r[name][1]}")
        print(f"| {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
