"""Evaluation of a checkpoint (or of a trivial baseline) on Moving MNIST.

    python eval.py --config_path configs/cpu_small.yaml --ckpt_file RUN/ckpt/best.ckpt \\
        --data_path ./data --dataset mnist [--num_sequences K] [--save_vis N]
    python eval.py --baseline copy_last --data_path ./data --dataset mnist

What is evaluated
- ``--dataset mnist``: the published test set ``mnist_test_seq.npy`` (``data_path`` is the
  directory holding it or the file itself), its first ``num_sequences`` sequences (0 = all):
  frames 0..T_in-1 are the input, frames T_in..T_in+T_out-1 (10..19) the target.
- ``--dataset synthetic``: a fixed generated test set seeded by ``test_seed``, never the
  validation sequences training selects on (``num_sequences`` sequences, default
  ``val_sequences``); no download needed.
- the network stored in ``ckpt_file``, whose architecture must match the config, or with
  ``--baseline zeros|copy_last`` a reference predictor (no checkpoint, no MindSpore).
Metric definitions are those of ``src/metrics.py`` (pixel-sum MSE/MAE, SSIM with
data_range 1, PSNR). For a checkpoint, the zeros and copy_last baselines are scored on the
same sequences as well, and a warning is printed when the model does not beat them: a
network that outputs blank frames or copies its last input is then easy to spot.

Where results go (the "eval directory")
- if ``output_dir`` holds a training run (config.yaml, ckpt/ or .ckpt files):
  ``<output_dir>/eval/`` for a checkpoint, ``<output_dir>/eval_<baseline>/`` for a
  baseline and ``<output_dir>/eval_onnx/`` for eval_onnx.py, so training files are never touched;
- otherwise ``output_dir`` itself.
It receives ``metrics.json`` (written atomically), ``metrics_per_frame.png``,
``vis/seq_XXXX.png`` and ``.gif`` (``--save_vis N``) and, through scripts/run_eval.sh,
``eval.log``. A new evaluation replaces these files; no ``.ckpt`` file is ever written.
``python -m src.evaluation --print_eval_dir [the eval.py arguments]`` prints that directory.
"""
import datetime
import json
import os
import sys
import time

import numpy as np

from src.config import load_config
from src.errors import ConfigError
from src.progress import Progress, format_duration

METRICS_JSON = "metrics.json"
METRICS_PLOT = "metrics_per_frame.png"
VIS_DIR = "vis"
EXPORTED_EVAL_DIRS = {"onnxruntime": "eval_onnx", "mindir": "eval_mindir"}  # eval_dir subdir by engine
REFERENCE_BASELINES = ("zeros", "copy_last")  # scored next to every checkpoint
BASELINE_HINT = {"zeros": "the network may predict (nearly) blank or blurred frames",
                 "copy_last": "the network may blur or copy frames instead of extrapolating the motion"}


# ---------------------------------------------------------------- where results go

def holds_training_run(directory):
    """True for a training run directory (config.yaml, ckpt/ or checkpoints in it)."""
    if not os.path.isdir(directory):
        return False
    if os.path.isfile(os.path.join(directory, "config.yaml")) or os.path.isdir(os.path.join(directory, "ckpt")):
        return True
    return any(name.endswith(".ckpt") for name in os.listdir(directory))


def eval_dir(cfg, subdir=None):
    """The directory this evaluation writes into (see the module docstring); ``subdir``
    replaces ``eval`` (an exported model: ``eval_onnx``)."""
    root = os.path.abspath(cfg.output_dir)
    if os.path.exists(root) and not os.path.isdir(root):
        raise ConfigError(f"config key 'output_dir': {root} exists and is not a directory")
    if not holds_training_run(root):
        return root
    return os.path.join(root, subdir or ("eval" if cfg.baseline == "none" else f"eval_{cfg.baseline}"))


# ---------------------------------------------------------------- what is evaluated

def build_source(cfg):
    """The sequences to evaluate and a description of them for metrics.json."""
    if cfg.dataset == "mnist":
        from src.data.archive import unpacked_data_path
        from src.data.test_set import TEST_FILE, TestSequences, resolve_test_file

        path = os.path.abspath(resolve_test_file(unpacked_data_path(cfg, [(TEST_FILE,)])))  # a .zip is unpacked
        source = TestSequences(path, cfg.num_sequences, cfg.input_frames, cfg.output_frames,
                               image_size=cfg.image_size)
        return source, {"dataset": "mnist", "data_path": path, "description": "mnist_test_seq.npy"}
    from src.data.pipeline import held_out_source, load_digits

    count = cfg.num_sequences or cfg.val_sequences
    if count == 0:
        raise ConfigError("nothing to evaluate: dataset synthetic with val_sequences 0; pass --num_sequences K")
    source = held_out_source(cfg, load_digits(cfg, "val"), count)
    return source, {"dataset": "synthetic", "data_path": None,
                    "description": f"generated test set: {count} sequences, {cfg.num_digits_val} digits, "
                                   f"test_seed {cfg.test_seed}"}


def baseline_predictor(kind, output_frames):
    """numpy (B, T_in, 1, H, W) -> (B, T_out, 1, H, W) from a trivial rule."""
    from src.baselines import predict_baseline

    return lambda inputs: predict_baseline(kind, inputs, output_frames)


def checkpoint_predictor(cfg):
    """The checkpoint's network, compiled once for batches of ``eval_batch_size`` (src.predictor)."""
    from src.checkpoint import load_network_from_checkpoint
    from src.device import init_device
    from src.predictor import BatchPredictor, compiled_forward

    init_device(cfg)
    net, _ = load_network_from_checkpoint(cfg.ckpt_file, cfg)
    net.set_train(False)
    return BatchPredictor.from_network(compiled_forward(net, cfg.mode), cfg, cfg.eval_batch_size, cfg.ckpt_file)


# ---------------------------------------------------------------- the evaluation loop

def _batches(source, batch_size):
    """Yield (first index, inputs, targets) numpy batches, (B, T, 1, H, W) float32."""
    from src.data.pipeline import iterate_batches

    start = 0
    for inputs, targets in iterate_batches(source, batch_size):
        yield start, inputs, targets
        start += len(inputs)


class _ProgressLog:
    """Live ETA line on a terminal; otherwise (logs, pipes) a plain line every ~10%."""

    def __init__(self, total, enabled=True):
        self.bar = Progress(total, "eval", unit="sequence")
        self.total = total
        self.enabled = enabled
        self.next_line = 0.1

    def update(self, done):
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.bar.start
        rate = done / elapsed if elapsed > 0 else 0.0
        if self.bar.live:
            self.bar.update(done, f"{rate:.1f} seq/s")
        elif done < self.total and done / self.total >= self.next_line:
            while self.next_line <= done / self.total:
                self.next_line += 0.1
            print(f"eval: {done}/{self.total} sequences, {rate:.1f} seq/s, "
                  f"ETA {format_duration(self.bar.eta(done))}", flush=True)

    def close(self):
        self.bar.clear()


def evaluate(cfg, predict_fn, source, on_batch=None, progress=True):
    """Score ``predict_fn`` on every sequence of ``source`` with the metrics of src/metrics.py.

    predict_fn: numpy (B, T_in, 1, H, W) float32 in [0, 1] -> (B, T_out, 1, H, W)
    (numpy or anything with ``.asnumpy()``). source: random access, ``source[i] ->
    (inputs, targets)``. Batches hold ``cfg.eval_batch_size`` sequences. ``on_batch(start,
    inputs, targets, pred)`` is called after every batch (pictures, extra scores).
    Returns ``StreamingMetrics.result()`` plus ``timing`` (seconds; the first batch
    includes graph compilation).
    """
    from src.metrics import StreamingMetrics

    total = len(source)
    if total == 0:
        raise ConfigError("nothing to evaluate: the data source holds no sequences")
    metrics = StreamingMetrics()
    log = _ProgressLog(total, progress)
    t0 = time.perf_counter()
    first_batch_s = predict_s = 0.0
    for start, inputs, targets in _batches(source, cfg.eval_batch_size):
        t_pred = time.perf_counter()
        pred = predict_fn(inputs)
        pred = np.asarray(pred.asnumpy() if hasattr(pred, "asnumpy") else pred)  # (B, T_out, 1, H, W)
        elapsed = time.perf_counter() - t_pred
        predict_s += elapsed
        if start == 0:
            first_batch_s = time.perf_counter() - t0
        metrics.update(pred, targets)
        if on_batch is not None:
            on_batch(start, inputs, targets, pred)
        log.update(start + len(inputs))
    log.close()
    result = metrics.result()
    total_s = time.perf_counter() - t0
    result["timing"] = {"total_s": round(total_s, 3), "predict_s": round(predict_s, 3),
                        "first_batch_s": round(first_batch_s, 3),
                        "sequences_per_s": round(result["num_sequences"] / total_s, 3) if total_s > 0 else None}
    return result


class _BatchHooks:
    """Per-batch extras of an eval run: the reference baseline scores and the pictures."""

    def __init__(self, cfg, vis_dir, num_vis, references):
        from src.metrics import StreamingMetrics

        self.cfg = cfg
        self.vis_dir = vis_dir
        self.num_vis = num_vis
        self.references = {name: StreamingMetrics() for name in references}
        self.written = []

    def __call__(self, start, inputs, targets, pred):
        from src.baselines import predict_baseline

        for name, metrics in self.references.items():
            metrics.update(predict_baseline(name, inputs, self.cfg.output_frames), targets)
        for b in range(len(inputs)):
            if start + b < self.num_vis:
                self.written += save_sequence_pictures(self.vis_dir, start + b, inputs[b], targets[b], pred[b])


def save_sequence_pictures(vis_dir, index, inputs, target, pred):
    """Strip PNG (input, truth, prediction, |error|) and truth-vs-prediction GIF of one sequence."""
    from src.visualize import save_comparison_gif, save_sequence_strip

    stem = os.path.join(vis_dir, f"seq_{index:04d}")
    return [save_sequence_strip(stem + ".png", inputs, target, pred, scale=2),
            save_comparison_gif(stem + ".gif", target, pred, inputs=inputs)]


# ---------------------------------------------------------------- reporting

def write_json_atomic(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _averages(result):
    return {k: result[k] for k in ("mse", "mae", "ssim", "ssim_openstl", "psnr")}


def summary_line(result, model):
    return (f"result: mse={result['mse']:.3f} mae={result['mae']:.3f} ssim={result['ssim']:.4f} "
            f"ssim_openstl={result['ssim_openstl']:.4f} psnr={result['psnr']:.3f} "
            f"sequences={result['num_sequences']} model={model}")


def print_baseline_comparison(result, references):
    """The baselines' scores on the same sequences; a warning where a baseline scores better."""
    for name, ref in references.items():
        print(f"{name} baseline on the same sequences: mse={ref['mse']:.3f} mae={ref['mae']:.3f} "
              f"ssim={ref['ssim']:.4f} psnr={ref['psnr']:.3f}", flush=True)
    for name, ref in references.items():
        worse = []
        if result["mse"] >= ref["mse"]:
            worse.append(f"MSE {ref['mse']:.3f} vs {result['mse']:.3f}")
        if result["ssim"] <= ref["ssim"]:
            worse.append(f"SSIM {ref['ssim']:.4f} vs {result['ssim']:.4f}")
        if worse:
            print(f"warning: the {name} baseline scores better than the model ({', '.join(worse)}); "
                  f"{BASELINE_HINT[name]}; look at the pictures (--save_vis N)", flush=True)


def build_report(cfg, result, data, references, argv, exported=None, script="eval.py"):
    """The content of metrics.json (``exported``: the predictor of an exported model file)."""
    report = dict(_averages(result))
    report.update({
        "num_sequences": result["num_sequences"],
        "first_frame": cfg.input_frames + 1,
        "per_frame": result["per_frame"],
        "checkpoint": None if cfg.baseline != "none" or not cfg.ckpt_file else os.path.abspath(cfg.ckpt_file),
        "baseline": None if cfg.baseline == "none" else cfg.baseline,
        "dataset": data["dataset"],
        "data_path": data["data_path"],
        "data": data["description"],
        "definitions": "mse/mae: per-frame SUM over pixels (all channels) in [0,1] (pred clipped); ssim: skimage "
                       "structural_similarity data_range=1.0, mean over channels; ssim_openstl: as OpenSTL computes "
                       "it (data_range 2.0, float32), comparable only with OpenSTL's SSIM; psnr: -10*log10(mean pixel "
                       "MSE), capped at 100 dB; averages over sequences and predicted frames",
        "timing": result["timing"],
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": [script] + list(argv or []),
        "config": cfg.to_dict(),
    })
    if exported is not None:  # "checkpoint" is then the one the file was exported from
        report.update(model_file=os.path.abspath(exported.name), engine=exported.engine)
    if references:
        report["baselines"] = {name: dict(_averages(r), per_frame=r["per_frame"]) for name, r in references.items()}
    return report


# ---------------------------------------------------------------- the procedure

def run(cfg, argv=None, exported=None, script="eval.py"):
    """Evaluate, print the table, write metrics.json, the metric plot and the pictures.

    ``exported``: a src.predictor.BatchPredictor of an exported model file to evaluate instead
    of ``cfg.ckpt_file`` (eval_onnx.py); in a training run its results go to ``eval_onnx``."""
    from src.metrics import format_table
    from src.visualize import save_metric_plot

    out_dir = eval_dir(cfg, None if exported is None else EXPORTED_EVAL_DIRS[exported.engine])
    source, data = build_source(cfg)  # data errors first: they are cheap to find
    if exported is not None:
        predict_fn, model = exported, os.path.abspath(exported.name)
    elif cfg.baseline != "none":
        if cfg.ckpt_file:
            print(f"note: --baseline {cfg.baseline} given, --ckpt_file {cfg.ckpt_file} is not used", flush=True)
        predict_fn, model = baseline_predictor(cfg.baseline, cfg.output_frames), f"baseline:{cfg.baseline}"
    else:
        predict_fn, model = checkpoint_predictor(cfg), os.path.abspath(cfg.ckpt_file)
    os.makedirs(out_dir, exist_ok=True)
    num_vis = min(cfg.save_vis, len(source))
    runs_on = f"engine {exported.engine}" if exported is not None else \
        f"mode {cfg.mode if cfg.baseline == 'none' else 'numpy'}"
    print(f"evaluating {model} on {len(source)} sequences of {data['description']}"
          f"{' (' + data['data_path'] + ')' if data['data_path'] else ''}, batch {cfg.eval_batch_size}, "
          f"{runs_on}; results in {out_dir}", flush=True)

    hooks = _BatchHooks(cfg, os.path.join(out_dir, VIS_DIR), num_vis,
                        references=REFERENCE_BASELINES if cfg.baseline == "none" else ())
    result = evaluate(cfg, predict_fn, source, on_batch=hooks)
    references = {name: metrics.result() for name, metrics in hooks.references.items()}

    first_frame = cfg.input_frames + 1
    print(format_table(result, first_frame=first_frame), flush=True)
    print_baseline_comparison(result, references)
    timing = result["timing"]
    compiled = " incl. graph compilation" if cfg.baseline == "none" and cfg.mode == "graph" and exported is None else ""
    print(f"time: {format_duration(timing['total_s'])} ({timing['sequences_per_s']} sequences/s; first batch "
          f"{timing['first_batch_s']:.1f} s{compiled})", flush=True)

    json_path = write_json_atomic(os.path.join(out_dir, METRICS_JSON), build_report(cfg, result, data, references, argv,
                                                                                  exported, script))
    compare = {name: r["per_frame"] for name, r in references.items()} or None
    plot_path = save_metric_plot(os.path.join(out_dir, METRICS_PLOT), result["per_frame"], first_frame=first_frame,
                                 compare=compare, label="model" if cfg.baseline == "none" else cfg.baseline)
    print(f"metrics: {json_path}", flush=True)
    print(f"per-frame plot: {plot_path}", flush=True)
    for path in hooks.written:
        print(f"picture: {path}", flush=True)
    print(summary_line(result, model), flush=True)
    return 0


def main(argv):
    """Entry used by eval.py."""
    return run(load_config(argv), argv)


def _cli(argv):
    """``python -m src.evaluation --print_eval_dir [eval.py arguments]`` (used by run_eval.sh)."""
    if argv[:1] != ["--print_eval_dir"]:
        print("usage: python -m src.evaluation --print_eval_dir [--config_path F] [--key value ...]",
              file=sys.stderr)
        return 1
    print(eval_dir(load_config(argv[1:])))
    return 0


if __name__ == "__main__":
    from src.errors import run_cli

    run_cli(_cli)
