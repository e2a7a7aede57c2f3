"""CPU inference throughput of one network in three engines, in one run on the same machine:

* ``mindspore``   the network in MindSpore graph mode (``src.predictor.compiled_forward``, as eval.py runs it);
* ``mindir``      the exported MINDIR in ``mindspore.load`` + ``nn.GraphCell`` (as predict.py);
* ``onnxruntime`` the exported ONNX file in an ONNX Runtime CPU session (as eval_onnx.py).

Usage (from the repository root; needs ``pip install -r requirements-onnx.txt``):

    python bench/onnx_throughput.py [--config_path configs/cpu_small.yaml] [--arch paper|zoo]
                                    [--batch_size 8] [--repeats 7] [--ort_threads 0] [--ckpt_file CKPT]
                                    [--output results.json]

The network is built from the config (seeded random weights; speed does not depend on them)
or loaded from ``--ckpt_file``, exported with a fixed batch of ``--batch_size`` to a temporary
MINDIR and ONNX file, and every engine is fed the same seeded batch. After one warm-up call
each (graph compilation, session set-up), the engines are timed in turns, ``--repeats`` rounds
of one call each, so that load from other processes falls on all of them alike; the median
call gives sequences/s. The largest difference of each engine's output to the MindSpore
network's is printed as a check that the three compute the same function.

The load average is printed before and after: on a shared (contended) machine the absolute
figures are lower bounds and only the ratios between engines measured in the same run are
meaningful. Asserts nothing.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

DEFAULT_CONFIG = os.path.join(REPO, "configs", "cpu_small.yaml")


def load_average():
    return round(os.getloadavg()[0], 2)


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def build_config(args):
    from src.config import load_config

    overrides = ["--config_path", args.config_path, "--mode", "graph", "--device_target", "CPU"]
    if args.arch:
        overrides += ["--arch", args.arch]
    if args.ckpt_file:
        overrides += ["--ckpt_file", args.ckpt_file]
    return load_config(overrides)


def build_network(cfg):
    import mindspore as ms

    from src.models.network import build_network as build

    if cfg.ckpt_file:
        from src.checkpoint import load_network_from_checkpoint

        net, cfg = load_network_from_checkpoint(cfg.ckpt_file, cfg)
    else:
        ms.set_seed(cfg.seed)
        net = build(cfg)
    net.set_train(False)
    return net, cfg


def build_engines(net, cfg, batch_size, ort_threads, directory):
    """engine name -> BatchPredictor, all with a fixed batch of ``batch_size``."""
    from src.export.model_info import read_mindir_info, read_onnx_info
    from src.export.writer import export_network
    from src.predictor import BatchPredictor
    from src.predictor import compiled_forward

    mindir, _, _ = export_network(net, cfg, batch_size, os.path.join(directory, "model"), "MINDIR")
    onnx_file, _, _ = export_network(net, cfg, batch_size, os.path.join(directory, "model"), "ONNX")
    return {
        "mindspore": BatchPredictor.from_network(compiled_forward(net, cfg.mode), cfg, batch_size, "checkpoint network"),
        "mindir": BatchPredictor.from_model(read_mindir_info(mindir)),
        "onnxruntime": BatchPredictor.from_model(read_onnx_info(onnx_file), threads=ort_threads),
    }, {"mindir_mb": round(os.path.getsize(mindir) / 1e6, 1), "onnx_mb": round(os.path.getsize(onnx_file) / 1e6, 1)}


def time_engines(engines, batch, repeats):
    """First call (warm-up) and per-round call times of every engine, the engines taking turns."""
    outputs, first, times = {}, {}, {name: [] for name in engines}
    for name, predictor in engines.items():
        start = time.perf_counter()
        outputs[name] = predictor.predict(batch)
        first[name] = time.perf_counter() - start
    for _ in range(repeats):
        for name, predictor in engines.items():
            start = time.perf_counter()
            predictor.predict(batch)
            times[name].append(time.perf_counter() - start)
    return outputs, first, times


def summarise(engines, outputs, first, times, batch_size):
    import numpy as np

    rows = []
    reference = outputs["mindspore"]
    for name in engines:
        median = statistics.median(times[name])
        rows.append(dict(engine=name, first_call_s=round(first[name], 3), median_s=round(median, 4),
                         seq_per_s=round(batch_size / median, 2), times_s=[round(t, 4) for t in times[name]],
                         max_abs_diff_to_mindspore=float(np.abs(outputs[name] - reference).max())))
    return rows


def throughput_table(rows):
    base = next(r for r in rows if r["engine"] == "mindspore")["seq_per_s"]
    lines = ["| engine | sequences/s | median call s | first call s | vs MindSpore graph | max abs diff |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['engine']} | {r['seq_per_s']:.2f} | {r['median_s']:.4f} | {r['first_call_s']:.2f} | "
                     f"{r['seq_per_s'] / base:.2f}x | {r['max_abs_diff_to_mindspore']:.1e} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config_path", default=DEFAULT_CONFIG)
    parser.add_argument("--arch", default="", help="override the config's arch: paper | zoo")
    parser.add_argument("--ckpt_file", default="", help="a trained checkpoint instead of seeded random weights")
    parser.add_argument("--batch_size", type=int, default=8, help="sequences per call (the exported batch)")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds after the warm-up")
    parser.add_argument("--ort_threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: one per core)")
    parser.add_argument("--output", default="", help="also write the results as JSON here")
    args = parser.parse_args(argv)

    import numpy as np

    import mindspore as ms
    import onnxruntime

    from src.device import init_device
    from src.export.model_info import model_input_shape

    cfg = build_config(args)
    init_device(cfg)
    net, cfg = build_network(cfg)
    shape = model_input_shape(cfg, args.batch_size)
    batch = np.random.default_rng(0).random(shape, dtype=np.float32)  # (B, T_in, C, H, W)
    load_start = load_average()
    print(f"# {cpu_model()}, {os.cpu_count()} cores, MindSpore {ms.__version__}, "
          f"ONNX Runtime {onnxruntime.__version__}; arch {cfg.arch}, batch {args.batch_size}, {args.repeats} rounds; "
          f"load average {load_start} (a shared machine: compare engines within this run only)", flush=True)
    with tempfile.TemporaryDirectory(prefix="onnx-throughput-") as directory:
        engines, sizes = build_engines(net, cfg, args.batch_size, args.ort_threads, directory)
        outputs, first, times = time_engines(engines, batch, args.repeats)
    rows = summarise(engines, outputs, first, times, args.batch_size)
    load_end = load_average()
    print(throughput_table(rows))
    print(f"files: MINDIR {sizes['mindir_mb']} MB, ONNX {sizes['onnx_mb']} MB; load average {load_start} -> "
          f"{load_end}", flush=True)
    if args.output:
        result = dict(settings=vars(args), arch=cfg.arch, input_shape=list(shape), rows=rows, files=sizes,
                      load_start=load_start, load_end=load_end, cpu=cpu_model(), cores=os.cpu_count(),
                      mindspore=ms.__version__,
                      onnxruntime=onnxruntime.__version__)
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
        print(f"written {args.output}")


if __name__ == "__main__":
    main()
