"""Training-step and inference speed of this project's MindSpore code next to a PyTorch reference.

Usage (from the repository root; needs ``pip install -r bench/requirements.txt`` for PyTorch):

    python bench/bench_step.py [--quick] [--output bench/results.json] [--config_path configs/cpu.yaml]
                               [--archs zoo,paper] [--batch_sizes 2,4] [--steps 3] [--threads 2]

For every (architecture, batch size, framework) a fresh subprocess builds the network from the
config (``configs/cpu.yaml`` with ``--arch`` and ``--batch_size`` overridden) and measures:

* the training step (``src.training.step.build_train_step``: MSE, Adam, clipping; compiled
  with ``mindspore.jit``): the first call (compilation + one step) and the median of
  ``--steps`` further calls;
* forward-only inference (``src.predictor.compiled_forward``): first call and the median of further calls;
* the process's peak resident memory (VmHWM), one process per row so peaks are separable.

The PyTorch rows run ``bench/torch_reference.py`` (eager) with ``torch.set_num_threads(--threads)``
in two layouts of the same layers: ``torch`` frame by frame (as PyTorch ConvLSTMs are usually
written) and ``torch_layer`` layer-major (the layout of this project's MindSpore networks), so
the table separates the framework from the layout. GFLOP/s use ``src.models.flops.network_cost``.
Prints a markdown table and writes the JSON results. Asserts nothing.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DEFAULT_CONFIG = os.path.join(REPO, "configs", "cpu.yaml")
WORKER_TIMEOUT = 900


# ----------------------------------------------------------------------------- helpers (both sides)

def peak_rss_mib():
    """High-water mark of this process's resident memory (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def load_average():
    return round(os.getloadavg()[0], 2)


def time_calls(fn, count):
    """Seconds of each of ``count`` calls of ``fn`` (which must block until its result is ready)."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def random_batch(cfg, seed=0):
    """A (inputs, targets) float32 batch in [0, 1] of the configured shapes (speed does not depend on the data)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (cfg.batch_size, 1, cfg.image_size, cfg.image_size)
    inputs = rng.random((shape[0], cfg.input_frames) + shape[1:], dtype=np.float32)
    targets = rng.random((shape[0], cfg.output_frames) + shape[1:], dtype=np.float32)
    return inputs, targets


def worker_config(args):
    from src.config import load_config

    return load_config(["--config_path", args.config_path, "--arch", args.arch, "--batch_size", str(args.batch_size)])


def summarise(first, times):
    """First call, median of the rest and the compile estimate (first minus median)."""
    median = statistics.median(times)
    return dict(first_s=round(first, 3), median_s=round(median, 4), compile_s=round(max(0.0, first - median), 2),
                times_s=[round(t, 3) for t in times])


# ----------------------------------------------------------------------------- workers

def run_mindspore(args):
    """Time this project's compiled training step and predict function."""
    import mindspore as ms

    from src.device import init_device
    from src.models.network import build_network
    from src.models.mixed_precision import training_forward
    from src.predictor import compiled_forward
    from src.training.step import build_optimizer, build_train_step

    if args.ms_threads:
        ms.device_context.cpu.op_tuning.threads_num(args.ms_threads)
    cfg = worker_config(args)
    init_device(cfg)
    ms.set_seed(cfg.seed)
    net = build_network(cfg)
    optimizer = build_optimizer(cfg, net)
    step = build_train_step(cfg, training_forward(net), optimizer)
    inputs, targets = (ms.Tensor(a) for a in random_batch(cfg))
    lr = ms.Tensor(cfg.lr, ms.float32)

    def train_once():
        loss, _ = step(inputs, targets, lr)
        loss.asnumpy()

    first = time_calls(train_once, 1)[0]
    train = summarise(first, time_calls(train_once, args.steps))
    predict = compiled_forward(net, cfg.mode)
    net.set_train(False)

    def infer_once():
        predict(inputs).asnumpy()

    first = time_calls(infer_once, 1)[0]
    infer = summarise(first, time_calls(infer_once, args.infer_steps))
    return dict(train=train, infer=infer, version=ms.__version__)


def run_torch(args, layout="frame", bf16=False):
    """Time the PyTorch reference (eager) in ``layout`` (``frame`` or ``layer``); ``bf16``: under
    ``torch.autocast("cpu", dtype=torch.bfloat16)`` (bfloat16 matrix units: AMX, AVX512-BF16)."""
    import torch

    from bench import torch_reference

    torch.set_num_threads(args.threads)
    cfg = worker_config(args)
    torch.manual_seed(cfg.seed)
    dtype = torch.bfloat16 if bf16 else None
    net = torch_reference.build_network(cfg, layout)
    step = torch_reference.build_train_step(cfg, net, autocast_dtype=dtype)
    inputs, targets = (torch.from_numpy(a) for a in random_batch(cfg))
    first = time_calls(lambda: step(inputs, targets), 1)[0]
    train = summarise(first, time_calls(lambda: step(inputs, targets), args.steps))
    net.eval()
    predict = torch_reference.build_predict_fn(net, autocast_dtype=dtype)
    first = time_calls(lambda: predict(inputs), 1)[0]
    infer = summarise(first, time_calls(lambda: predict(inputs), args.infer_steps))
    return dict(train=train, infer=infer, version=torch.__version__,
                params=torch_reference.count_parameters(net))


def worker_main(args):
    """Run one measurement and print it as the last line (JSON)."""
    load_before = load_average()
    runners = {"mindspore": run_mindspore, "torch": run_torch,
               "torch_layer": lambda a: run_torch(a, layout="layer"),
               "torch_bf16": lambda a: run_torch(a, bf16=True),
               "torch_layer_bf16": lambda a: run_torch(a, layout="layer", bf16=True)}
    result = runners[args.worker](args)
    result.update(framework=args.worker, arch=args.arch, batch_size=args.batch_size,
                  peak_rss_mib=round(peak_rss_mib(), 1), load_before=load_before, load_after=load_average())
    print(json.dumps(result), flush=True)


# ----------------------------------------------------------------------------- driver

def spawn_worker(args, framework, arch, batch_size):
    """Run one (framework, arch, batch) measurement in a fresh process; returns its dict or an error dict."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--arch", arch,
           "--batch_size", str(batch_size), "--steps", str(args.steps), "--infer_steps", str(args.infer_steps),
           "--threads", str(args.threads), "--config_path", args.config_path, "--ms_threads", str(args.ms_threads)]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("GLOG_v", "3")  # MindSpore: errors only
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return dict(framework=framework, arch=arch, batch_size=batch_size, error=f"timeout {WORKER_TIMEOUT} s")
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("{"):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return dict(framework=framework, arch=arch, batch_size=batch_size, error=tail[:300])
    result = json.loads(lines[-1])
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return result


def add_rates(row, cost):
    """Sequences/s and GFLOP/s from the medians and the analytic FLOP counts."""
    if "error" in row:
        return row
    b = row["batch_size"]
    row["train"]["gflops"] = round(cost["train_step_flops"] * b / row["train"]["median_s"] / 1e9, 1)
    row["infer"]["seq_per_s"] = round(b / row["infer"]["median_s"], 3)
    row["infer"]["gflops"] = round(cost["forward_flops"] * b / row["infer"]["median_s"] / 1e9, 1)
    return row


def network_costs(config_path, archs):
    from src.config import load_config
    from src.models.flops import network_cost

    return {arch: network_cost(load_config(["--config_path", config_path, "--arch", arch])) for arch in archs}


def _ratio(ms_row, pt_row, section, key="median_s"):
    try:
        return round(ms_row[section][key] / pt_row[section][key], 2)
    except (KeyError, TypeError, ZeroDivisionError):
        return None


FRAMEWORK_NAMES = {"mindspore": "MindSpore", "torch": "PyTorch frame-by-frame", "torch_layer": "PyTorch layer-major",
                   "torch_bf16": "PyTorch frame-by-frame, bf16 autocast",
                   "torch_layer_bf16": "PyTorch layer-major, bf16 autocast"}


def step_time_table(rows):
    """Markdown table: one line per (arch, batch, framework); each PyTorch line carries the
    MindSpore/PyTorch time ratios against the MindSpore line of the same arch and batch."""
    head = ("| arch | batch | framework | train step s (median) | first step s | compile s | train GFLOP/s "
            "| infer seq/s | infer GFLOP/s | infer compile s | peak RSS MiB | MS/PT train | MS/PT infer |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    by_key = {(r["arch"], r["batch_size"], r["framework"]): r for r in rows}
    for r in rows:
        name = FRAMEWORK_NAMES[r["framework"]]
        if "error" in r:
            lines.append(f"| {r['arch']} | {r['batch_size']} | {name} | error: {r['error']} |" + " |" * 9)
            continue
        tr, inf = r["train"], r["infer"]
        ratio_t = ratio_i = ""
        if r["framework"] != "mindspore":
            ms_row = by_key.get((r["arch"], r["batch_size"], "mindspore"))
            if ms_row and "error" not in ms_row:
                ratio_t = f"{_ratio(ms_row, r, 'train')}x"
                ratio_i = f"{_ratio(ms_row, r, 'infer')}x"
        lines.append(f"| {r['arch']} | {r['batch_size']} | {name} | {tr['median_s']:.2f} | {tr['first_s']:.1f} | "
                     f"{tr['compile_s']:.1f} | {tr['gflops']:.0f} | {inf['seq_per_s']:.2f} | {inf['gflops']:.0f} | "
                     f"{inf['compile_s']:.1f} | {r['peak_rss_mib']:.0f} | {ratio_t} | {ratio_i} |")
    return "\n".join(lines)


def machine_info():
    model = platform.processor()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")),
                     model)
    except OSError:
        pass
    return dict(cpu=model, cores=os.cpu_count(), python=platform.python_version(),
                date=datetime.datetime.now().isoformat(timespec="seconds"))


def driver_main(args):
    archs = args.archs.split(",")
    batches = [int(b) for b in args.batch_sizes.split(",")]
    costs = network_costs(args.config_path, archs)
    info = machine_info()
    info["load_start"] = load_average()
    print(f"# {info['cpu']}, {info['cores']} cores, {info['date']}, load {info['load_start']}, "
          f"steps {args.steps}, infer steps {args.infer_steps}, threads {args.threads}", flush=True)
    rows = []
    for arch in archs:
        for batch in batches:
            for framework in args.frameworks.split(","):
                row = add_rates(spawn_worker(args, framework, arch, batch), costs[arch])
                rows.append(row)
                summary = row.get("error") or (f"train {row['train']['median_s']:.2f} s, "
                                               f"infer {row['infer']['seq_per_s']:.2f} seq/s, "
                                               f"load {row['load_before']}->{row['load_after']}")
                print(f"  {arch} batch {batch} {framework}: {summary}", flush=True)
    info["load_end"] = load_average()
    table = step_time_table(rows)
    print()
    print(table)
    result = dict(machine=info, settings=vars(args), network_costs=costs, rows=rows, table=table)
    with open(args.output, "w") as out:
        json.dump(result, out, indent=1)
    print(f"\nwritten {args.output}")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 2 only, 1 timed step and 1 timed forward (about 3-4 minutes on a quiet machine)")
    parser.add_argument("--output", default=os.path.join(REPO, "bench", "results.json"))
    parser.add_argument("--config_path", default=DEFAULT_CONFIG)
    parser.add_argument("--archs", default="zoo,paper")
    parser.add_argument("--batch_sizes", default="2,4")
    parser.add_argument("--frameworks", default="mindspore,torch,torch_layer,torch_layer_bf16",
                        help="comma list of mindspore, torch (frame-by-frame), torch_layer (layer-major), "
                             "torch_bf16 / torch_layer_bf16 (the same under bfloat16 CPU autocast)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps after the first")
    parser.add_argument("--infer_steps", type=int, default=3, help="timed forward passes after the first")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch intra-op threads")
    parser.add_argument("--ms_threads", type=int, default=0,
                        help="MindSpore CPU kernel threads (device_context.cpu.op_tuning.threads_num); 0: its default")
    # internal: one measurement in this process
    parser.add_argument("--worker", choices=tuple(FRAMEWORK_NAMES), help=argparse.SUPPRESS)
    parser.add_argument("--arch", help=argparse.SUPPRESS)
    parser.add_argument("--batch_size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_sizes, args.steps, args.infer_steps = "2", 1, 1
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        worker_main(args)
    else:
        driver_main(args)


if __name__ == "__main__":
    main()
