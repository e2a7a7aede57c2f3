"""Evaluation of a checkpoint (or of a trivial baseline) on Moving MNIST or own sequences.

    python eval.py --config_path configs/cpu_small.yaml --ckpt_file RUN/ckpt/best.ckpt \\
        --data_path ./data --dataset mnist [--num_sequences K] [--save_vis N]
    python eval.py --baseline copy_last --data_path ./data --dataset mnist
    python eval.py --ckpt_file RUN/ckpt/best.ckpt --thresholds [20,35]     # own data: its test split

What is evaluated
- ``--dataset mnist``: the published test set ``mnist_test_seq.npy`` (``data_path`` is the
  directory holding it or the file itself), its first ``num_sequences`` sequences (0 = all):
  frames 0..T_in-1 are the input, frames T_in..T_in+T_out-1 (10..19) the target.
- ``--dataset synthetic``: a fixed generated test set seeded by ``test_seed``, never the
  validation sequences training selects on (``num_sequences`` sequences, default
  ``val_sequences``); no download needed.
- ``--dataset sequences`` (own arrays, src/data/sequences.py): the windows of the test split
  of ``data_path`` (a file is split by sequence exactly as training split it; a directory:
  its test file), or with ``--eval_split all`` every window of the file; read with the
  layout and the normalisation the model was trained with. Frames of another shape than the
  model's are refused in one line naming both shapes.
- the network stored in ``ckpt_file``, whose architecture must match the config, or with
  ``--baseline zeros|copy_last`` a reference predictor (no checkpoint, no MindSpore).
Metric definitions are those of ``src/metrics.py`` (pixel-sum MSE/MAE, SSIM with
data_range 1, PSNR). For a checkpoint, the zeros and copy_last baselines are scored on the
same sequences as well, and a warning is printed when the model does not beat them: a
network that outputs blank frames or copies its last input is then easy to spot.
``--thresholds [t1,t2,...]`` adds POD/FAR/CSI/HSS per threshold and lead frame
(src.metrics.SkillScores) for the model and the baselines, on predictions and targets mapped
back to the data's units (own sequences: the training normalisation undone; Moving MNIST:
pixel values in [0, 1], so thresholds must lie in (0, 1]); they go to the console
(format_skill_table and a CSI/HSS comparison), ``metrics.json`` (``skill_scores``, and
``baselines.<name>.skill_scores``) and ``skill_per_frame.png``.

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

from src.config import BASELINES, load_config
from src.errors import ConfigError
from src.progress import Progress, format_duration

METRICS_JSON = "metrics.json"
METRICS_PLOT = "metrics_per_frame.png"
SKILL_PLOT = "skill_per_frame.png"
VIS_DIR = "vis"
EXPORTED_EVAL_DIRS = {"onnxruntime": "eval_onnx", "mindir": "eval_mindir"}  # eval_dir subdir by engine
REFERENCE_BASELINES = BASELINES  # scored next to every checkpoint


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
    if cfg.dataset == "sequences":
        from src.data.pipeline import evaluation_windows

        source, described = evaluation_windows(cfg)
        return source, {"dataset": "sequences", "data_path": os.path.abspath(cfg.data_path), "description": described}
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


def config_for_data(cfg, source, model=None):
    """``cfg`` with the frame shape of own sequence data (``source``); one DataError line naming
    both shapes when ``model`` (a checkpoint or model file whose config ``cfg`` is) expects others."""
    if cfg.dataset != "sequences":
        return cfg
    from src.data.pipeline import config_for_frames

    expected_from = f"the model {model}" if model else "the config (channels, frame_height, frame_width)"
    return config_for_frames(cfg, (source.channels, source.height, source.width), source.file.dtype,
                             source.file.path, expected_from)


def units_of(cfg, source):
    """(to_units, description): maps [0, 1] frames to the units thresholds are given in."""
    normalization = getattr(source, "normalization", None)
    if cfg.dataset != "sequences" or normalization is None:
        return (lambda frames: frames), "pixel values in [0, 1]"
    n = normalization
    return n.denormalize, (f"the data's units: [0, 1] mapped back by the training normalisation ({n.scale}, "
                           f"0 -> {n.data_min:g}, 1 -> {n.data_max:g})")


def baseline_predictor(kind, output_frames):
    """numpy (B, T_in, C, H, W) -> (B, T_out, C, H, W) from a trivial rule."""
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


def _progress_text(progress, done):
    elapsed = time.perf_counter() - progress.start
    return f"{done / elapsed if elapsed > 0 else 0.0:.1f} seq/s"


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
    log = Progress(total, "eval", unit="sequence", plain_lines=True) if progress else None
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
        if log is not None:
            log.update(start + len(inputs), _progress_text(log, start + len(inputs)))
    if log is not None:
        log.clear()
    result = metrics.result()
    total_s = time.perf_counter() - t0
    result["timing"] = {"total_s": round(total_s, 3), "predict_s": round(predict_s, 3),
                        "first_batch_s": round(first_batch_s, 3),
                        "sequences_per_s": round(result["num_sequences"] / total_s, 3) if total_s > 0 else None}
    return result


MAIN = "model"  # key of the evaluated predictor's skill scores in _BatchHooks.skills


class _BatchHooks:
    """Per-batch extras of an eval run: the reference baseline scores, the skill scores (in the
    data's units, ``to_units``) of the evaluated predictor and the baselines, and the pictures."""

    def __init__(self, cfg, vis_dir, num_vis, references, to_units=None):
        from src.metrics import SkillScores, StreamingMetrics

        self.cfg = cfg
        self.vis_dir = vis_dir
        self.num_vis = num_vis
        self.references = {name: StreamingMetrics() for name in references}
        self.to_units = to_units or (lambda frames: frames)
        names = (MAIN,) + tuple(references)
        self.skills = {name: SkillScores(cfg.thresholds) for name in names} if cfg.thresholds else {}
        self.written = []

    def _score_skill(self, name, pred, truth):
        if self.skills:
            self.skills[name].update(self.to_units(np.clip(pred, 0.0, 1.0)), truth)

    def __call__(self, start, inputs, targets, pred):
        from src.baselines import predict_baseline

        truth = self.to_units(targets) if self.skills else None  # (B, T_out, C, H, W) in the data's units
        self._score_skill(MAIN, pred, truth)
        for name, metrics in self.references.items():
            reference = predict_baseline(name, inputs, self.cfg.output_frames)  # (B, T_out, C, H, W)
            metrics.update(reference, targets)
            self._score_skill(name, reference, truth)
        for b in range(len(inputs)):
            if start + b < self.num_vis:
                self.written += save_sequence_pictures(self.vis_dir, start + b, inputs[b], targets[b], pred[b])

    def skill_results(self):
        """{name: SkillScores.result()} ({} without thresholds)."""
        return {name: scores.result() for name, scores in self.skills.items()}


def save_sequence_pictures(vis_dir, index, inputs, target, pred):
    """Strip PNG (input, truth, prediction, |error|) and truth-vs-prediction GIF of one sequence;
    frames (T, C, H, W): pictures of channel 0."""
    from src.visualize import save_comparison_gif, save_sequence_strip

    inputs, target, pred = (np.asarray(a)[:, :1] if np.ndim(a) == 4 else a for a in (inputs, target, pred))
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


def summary_line(result, model, data):
    """The last console line: the averages, the model and the data that was scored."""
    scored = data["description"] + (f" ({data['data_path']})" if data.get("data_path") else "")
    return (f"result: mse={result['mse']:.3f} mae={result['mae']:.3f} ssim={result['ssim']:.4f} "
            f"ssim_openstl={result['ssim_openstl']:.4f} psnr={result['psnr']:.3f} "
            f"sequences={result['num_sequences']} model={model} data={scored}")


BASELINE_NAMES = {"zeros": "predict-zeros", "copy_last": "repeat-last-frame"}
VERDICT_METRICS = (("MSE", "mse", -1), ("MAE", "mae", -1), ("SSIM", "ssim", 1), ("PSNR", "psnr", 1))  # sign: better


def baseline_table(result, references):
    """Model and baselines on the same sequences: one row each, MSE, MAE, SSIM, PSNR."""
    rows = [("model", result)] + [(BASELINE_NAMES.get(name, name), ref) for name, ref in references.items()]
    width = max(len(label) for label, _ in rows)
    lines = [f"{'':{width}}  {'MSE':>9} {'MAE':>9} {'SSIM':>7} {'PSNR':>7}"]
    lines += [f"{label:{width}}  {r['mse']:9.2f} {r['mae']:9.2f} {r['ssim']:7.4f} {r['psnr']:7.2f}" for label, r in rows]
    return "\n".join(lines)


def verdict(result, references):
    """One plain sentence: which baselines the model beats on which metric, and which not yet."""
    beats, not_yet = [], []
    for name, ref in references.items():
        better = [label for label, key, sign in VERDICT_METRICS if sign * (result[key] - ref[key]) > 0]
        worse = [label for label, key, _ in VERDICT_METRICS if label not in better]
        if better:
            beats.append(f"{BASELINE_NAMES.get(name, name)} on {'/'.join(better)}")
        if worse:
            not_yet.append(f"{BASELINE_NAMES.get(name, name)} on {'/'.join(worse)}")
    text = "the model beats " + ("; ".join(beats) if beats else "no baseline")
    return text + (f"; it does not yet beat {'; '.join(not_yet)}" if not_yet else "")


def blank_reason(result, references):
    """Why the model looks (nearly) blank or hazy, or None: not beating black frames on MSE, or
    an SSIM under half of theirs (a grey haze over the whole frame). A short training run that
    beats predict-zeros on MSE but not yet on SSIM is the expected case and gets no warning."""
    zeros = references.get("zeros")
    if zeros is None:
        return None
    if result["mse"] >= zeros["mse"]:
        return f"it does not beat predict-zeros on MSE ({result['mse']:.3f} vs {zeros['mse']:.3f})"
    if result["ssim"] < 0.5 * zeros["ssim"]:
        return f"its SSIM is under half of predict-zeros' ({result['ssim']:.4f} vs {zeros['ssim']:.4f})"
    return None


def print_baseline_comparison(result, references):
    """The table of model vs baselines, the verdict, and a warning for a (nearly) blank model."""
    if not references:
        return
    print(baseline_table(result, references), flush=True)
    print(verdict(result, references), flush=True)
    reason = blank_reason(result, references)
    if reason:
        print(f"warning: {reason}: the model may predict (nearly) blank, hazy or blurred frames; look at the "
              "pictures (--save_vis N), train longer or check the data", flush=True)


def skill_comparison_table(skills, main_label="model"):
    """CSI and HSS (means over lead frames) per threshold, one row per predictor ('-' = undefined)."""
    thresholds = skills[MAIN]["thresholds"]
    columns = [(score, t) for score in ("csi", "hss") for t in thresholds]
    rows = [(main_label if name == MAIN else BASELINE_NAMES.get(name, name), result) for name, result in skills.items()]
    width = max(len(label) for label, _ in rows)
    heads = [f"{score.upper()}>={t:g}" for score, t in columns]
    lines = [f"{'':{width}}  " + " ".join(f"{h:>10}" for h in heads)]
    for label, result in rows:
        by_threshold = {entry["threshold"]: entry["mean_over_lead_frames"] for entry in result["by_threshold"]}
        cells = [by_threshold[t][score] for score, t in columns]
        lines.append(f"{label:{width}}  " + " ".join(f"{'-':>10}" if v is None else f"{v:10.4f}" for v in cells))
    return "\n".join(lines)


def print_skill_scores(skills, units, main_label):
    """The evaluated predictor's full skill table, then CSI/HSS of it next to the baselines."""
    from src.metrics import format_skill_table

    if not skills:
        return
    print(f"thresholds in {units}", flush=True)
    print(format_skill_table(skills[MAIN]), flush=True)
    if len(skills) > 1:
        print("skill scores (mean over lead frames) of the model and the baselines on the same sequences:", flush=True)
        print(skill_comparison_table(skills, main_label), flush=True)


def _skill_report(result, units):
    return dict(result, units=units)


def build_report(cfg, result, data, references, argv, exported=None, script="eval.py", skills=None, units=""):
    """The content of metrics.json (``exported``: the predictor of an exported model file;
    ``skills``: SkillScores results by predictor, thresholds in ``units``)."""
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
    if skills:
        report["skill_scores"] = _skill_report(skills[MAIN], units)
        for name in references:
            report["baselines"][name]["skill_scores"] = _skill_report(skills[name], units)
    return report


def save_skill_plot(out_dir, skills, first_frame, main_label):
    """skill_per_frame.png: CSI and HSS per lead frame and threshold, model and baselines."""
    from src.visualize import save_skill_plot as draw

    labels = {name: (main_label if name == MAIN else BASELINE_NAMES.get(name, name)) for name in skills}
    by_threshold = [(entry["threshold"], {labels[name]: skills[name]["by_threshold"][k]["per_lead_frame"]
                                          for name in skills})
                    for k, entry in enumerate(skills[MAIN]["by_threshold"])]
    return draw(os.path.join(out_dir, SKILL_PLOT), by_threshold, first_frame=first_frame)


# ---------------------------------------------------------------- the procedure

def run(cfg, argv=None, exported=None, script="eval.py"):
    """Evaluate, print the table, write metrics.json, the metric plot and the pictures.

    ``exported``: a src.predictor.BatchPredictor of an exported model file to evaluate instead
    of ``cfg.ckpt_file`` (eval_onnx.py); in a training run its results go to ``eval_onnx``."""
    from src.metrics import format_table
    from src.visualize import save_metric_plot

    out_dir = eval_dir(cfg, None if exported is None else EXPORTED_EVAL_DIRS[exported.engine])
    source, data = build_source(cfg)  # data errors first: they are cheap to find
    model_file = exported.name if exported is not None else (cfg.ckpt_file if cfg.baseline == "none" else None)
    cfg = config_for_data(cfg, source, model_file)  # own data: its frame shape, refused if the model's differs
    to_units, units = units_of(cfg, source)
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
                        references=REFERENCE_BASELINES if cfg.baseline == "none" else (), to_units=to_units)
    result = evaluate(cfg, predict_fn, source, on_batch=hooks)
    references = {name: metrics.result() for name, metrics in hooks.references.items()}
    skills = hooks.skill_results()
    main_label = "model" if cfg.baseline == "none" else BASELINE_NAMES.get(cfg.baseline, cfg.baseline)

    first_frame = cfg.input_frames + 1
    print(format_table(result, first_frame=first_frame), flush=True)
    print_baseline_comparison(result, references)
    print_skill_scores(skills, units, main_label)
    timing = result["timing"]
    compiled = " incl. graph compilation" if cfg.baseline == "none" and cfg.mode == "graph" and exported is None else ""
    print(f"time: {format_duration(timing['total_s'])} ({timing['sequences_per_s']} sequences/s; first batch "
          f"{timing['first_batch_s']:.1f} s{compiled})", flush=True)

    report = build_report(cfg, result, data, references, argv, exported, script, skills=skills, units=units)
    json_path = write_json_atomic(os.path.join(out_dir, METRICS_JSON), report)
    compare = {name: r["per_frame"] for name, r in references.items()} or None
    plot_path = save_metric_plot(os.path.join(out_dir, METRICS_PLOT), result["per_frame"], first_frame=first_frame,
                                 compare=compare, label="model" if cfg.baseline == "none" else cfg.baseline)
    print(f"metrics: {json_path}", flush=True)
    print(f"per-frame plot: {plot_path}", flush=True)
    if skills:
        print(f"skill-score plot: {save_skill_plot(out_dir, skills, first_frame, main_label)}", flush=True)
    for path in hooks.written:
        print(f"picture: {path}", flush=True)
    print(summary_line(result, model, data), flush=True)
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
