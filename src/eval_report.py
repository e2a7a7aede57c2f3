"""The scoring and reporting steps of eval.py and eval_onnx.py (:func:`score`, :func:`report`): the tables,
metrics.json, plots and pictures. A checkpoint is compared with the baselines (``reference_baselines``) on
the same sequences, with a warning when it does not beat them (blank or copying networks); ``--thresholds``
adds skill scores in the data's units.

The "eval directory" (``python -m src.eval_report --print_eval_dir [eval.py arguments]`` prints it): in a
training run's ``output_dir`` (config.yaml, ckpt/ or .ckpt files) its ``eval/``, ``eval_<baseline>/`` or
``eval_onnx/``, so training files are never touched; otherwise ``output_dir``. New results replace old ones.
"""
import datetime
import os
import sys
from dataclasses import dataclass

from src.checkpoint import checkpoint_record, config_of_record
from src.cli import run_cli
from src.config import forecast_frames, keys_help
from src.errors import ConfigError
from src.evaluation import (MAIN, BatchExtras, SequencePictures, evaluate, picture_colours, reference_baselines,
                            rollout_note, units_of)
from src.io import write_json_atomic
from src.metrics import METRIC_NAMES, balance_of, format_skill_table, format_table
from src.progress import format_duration
from src.visualize import save_metric_plot, save_skill_plot

METRICS_JSON = "metrics.json"
METRICS_PLOT = "metrics_per_frame.png"
SKILL_PLOT = "skill_per_frame.png"
VIS_DIR = "vis"
ONNX_EVAL_DIR = "eval_onnx"  # eval_dir subdir of eval_onnx.py


# ---------------------------------------------------------------- where results go

def holds_training_run(directory):
    """True for a training run directory (config.yaml, ckpt/ or checkpoints in it)."""
    return os.path.isdir(directory) and (os.path.isfile(os.path.join(directory, "config.yaml"))
                                         or os.path.isdir(os.path.join(directory, "ckpt"))
                                         or any(name.endswith(".ckpt") for name in os.listdir(directory)))


def eval_dir(cfg, subdir=None):
    """The eval directory (module docstring); ``subdir`` replaces ``eval`` (an exported model's)."""
    root = os.path.abspath(cfg.output_dir)
    if os.path.exists(root) and not os.path.isdir(root):
        raise ConfigError(f"config key 'output_dir': {root} exists and is not a directory")
    if not holds_training_run(root):
        return root
    return os.path.join(root, subdir or ("eval" if cfg.baseline == "none" else f"eval_{cfg.baseline}"))


# ---------------------------------------------------------------- reporting

def _averages(result):
    return {k: result[k] for k in METRIC_NAMES}


def _say(*lines):
    for line in lines:
        print(line, flush=True)


def no_data_line(no_data, markers):
    """The console line on the target pixels without data (``nodata``) and how they were scored."""
    return (f"no data ({', '.join(markers)}): {no_data['no_data_values']} of {no_data['target_values']} target "
            f"values ({100.0 * no_data['fraction']:.2f} %) left out of every score; {no_data['convention']}")


def summary_line(result, model, data):
    """The last console line: the averages, the model and the data that was scored."""
    scored = data["description"] + (f" ({data['data_path']})" if data.get("data_path") else "")
    return (f"result: mse={result['mse']:.3f} mae={result['mae']:.3f} ssim={result['ssim']:.4f} "
            f"ssim_openstl={result['ssim_openstl']:.4f} psnr={result['psnr']:.3f} "
            f"sequences={result['num_sequences']} model={model} data={scored}")


BASELINE_NAMES = {"zeros": "predict-zeros", "copy_last": "repeat-last-frame", "extrapolation": "extrapolation",
                  "pysteps": "pysteps-extrapolation"}
VERDICT_METRICS = (("MSE", "mse", -1), ("MAE", "mae", -1), ("SSIM", "ssim", 1), ("PSNR", "psnr", 1))  # sign: better


def _label(name, main_label="model"):
    return main_label if name == MAIN else BASELINE_NAMES.get(name, name)


def baseline_table(result, references):
    """Model and baselines on the same sequences: one row each, MSE, MAE, SSIM, PSNR."""
    rows = [("model", result)] + [(_label(name), ref) for name, ref in references.items()]
    width = max(len(label) for label, _ in rows)
    lines = [f"{'':{width}}  {'MSE':>9} {'MAE':>9} {'SSIM':>7} {'PSNR':>7}"]
    lines += [f"{label:{width}}  {r['mse']:9.2f} {r['mae']:9.2f} {r['ssim']:7.4f} {r['psnr']:7.2f}"
              for label, r in rows]
    return "\n".join(lines)


def verdict(result, references):
    """One plain sentence: which baselines the model beats on which metric, and which not yet."""
    beats, not_yet = [], []
    for name, ref in references.items():
        better = [label for label, key, sign in VERDICT_METRICS if sign * (result[key] - ref[key]) > 0]
        worse = [label for label, key, _ in VERDICT_METRICS if label not in better]
        beats += [f"{_label(name)} on {'/'.join(better)}"] if better else []
        not_yet += [f"{_label(name)} on {'/'.join(worse)}"] if worse else []
    text = "the model beats " + ("; ".join(beats) if beats else "no baseline")
    return text + (f"; it does not yet beat {'; '.join(not_yet)}" if not_yet else "")


def blank_reason(result, references):
    """Why the model looks (nearly) blank or hazy, or None; beating predict-zeros on MSE but not
    yet on SSIM is normal for a short run and gets no warning."""
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
    _say(baseline_table(result, references), verdict(result, references))
    reason = blank_reason(result, references)
    if reason:
        print(f"warning: {reason}: the model may predict (nearly) blank, hazy or blurred frames; look at the "
              "pictures (--save_vis N), train longer or check the data", flush=True)


def skill_comparison_table(skills, main_label="model"):
    """CSI and HSS (means over lead frames) per threshold, one row per predictor ('-' = undefined)."""
    thresholds = skills[MAIN]["thresholds"]
    columns = [(score, t) for score in ("csi", "hss") for t in thresholds]
    rows = [(_label(name, main_label), result) for name, result in skills.items()]
    width = max(len(label) for label, _ in rows)
    balanced = "balanced" in skills[MAIN]
    heads = [f"{score.upper()}>={t:g}" for score, t in columns] + (["B-MSE", "B-MAE"] if balanced else [])
    lines = [f"{'':{width}}  " + " ".join(f"{h:>10}" for h in heads)]
    for label, result in rows:
        by_threshold = {entry["threshold"]: entry["mean_over_lead_frames"] for entry in result["by_threshold"]}
        cells = [by_threshold[t][score] for score, t in columns]
        cells += [result["balanced"]["b_mse"], result["balanced"]["b_mae"]] if balanced else []
        lines.append(f"{label:{width}}  " + " ".join(f"{'-':>10}" if v is None else f"{v:10.4f}" for v in cells))
    return "\n".join(lines)


def _fss_cell(value, width=7):
    return f"{'-':>{width}}" if value is None else f"{value:{width}.4f}"


def fss_table(skills, main_label="model"):
    """The FSS (means over lead frames) per threshold x scale, one row per predictor and threshold; the uniform
    FSS 0.5 + f0/2 of each threshold and each predictor's smallest scale reaching it; the model's notes."""
    fss = skills[MAIN]["fss"]
    rows = [(_label(name, main_label), result["fss"]) for name, result in skills.items()]
    width = max(len(label) for label, _ in rows)
    heads = [f"n={n}" for n in fss["scales"]]
    header = (f"{'threshold':>10} {'0.5+f0/2':>8}  {'':{width}}  " + " ".join(f"{h:>7}" for h in heads)
              + f" {'useful n':>8}")
    lines = [f"fractions skill score (Roberts and Lean 2008), {fss['num_sequences']} sequences x {fss['lead_frames']} "
             "lead frames: mean over lead frames per neighbourhood of n x n pixels; a scale is useful where FSS >= "
             "0.5 + f0/2 (f0: observed event fraction)", header, "-" * len(header)]
    for k, threshold in enumerate(fss["thresholds"]):
        for i, (label, result) in enumerate(rows):
            entry = result["by_threshold"][k]
            first = f"{threshold:>10g} {entry['uniform_fss']:8.4f}" if i == 0 else f"{'':>10} {'':>8}"
            useful = entry["smallest_useful_scale"]
            lines.append(f"{first}  {label:{width}}  "
                         + " ".join(_fss_cell(s["mean_over_lead_frames"]["fss"]) for s in entry["by_scale"])
                         + f" {'-' if useful is None else useful:>8}")
    lines.append("'-' = undefined (no event in forecast nor observation) or no scale useful; "
                 "fss in metrics.json: per lead frame, pooled, the sums")
    lines += [f"note: {note}" for entry in fss["by_threshold"] for note in entry["notes"]]
    return "\n".join(lines)


def print_skill_scores(skills, units, main_label):
    """The evaluated predictor's full skill table, then CSI/HSS of it next to the baselines, then the FSS of all."""
    if not skills:
        return
    _say(f"thresholds in {units}", format_skill_table(skills[MAIN]))
    balanced = skills[MAIN].get("balanced")
    if balanced:
        print(f"balanced errors (HKO-7's B-MSE/B-MAE: per-frame sums of w x error in [0, 1], w = "
              f"{'/'.join(f'{w:g}' for w in balanced['weights'])} for truth below/above "
              f"{'/'.join(f'{v:g}' for v in balanced['thresholds'])}): b_mse={balanced['b_mse']:.3f} "
              f"b_mae={balanced['b_mae']:.3f}", flush=True)
    if len(skills) > 1:
        _say("skill scores (mean over lead frames) of the model and the baselines on the same sequences:",
             skill_comparison_table(skills, main_label))
    if "fss" in skills[MAIN]:
        _say(fss_table(skills, main_label))


def build_report(cfg, result, data, references, argv, exported=None, script="eval.py", skills=None, units=""):
    """metrics.json (``exported``: an exported model's predictor; ``skills``: SkillScores results by name)."""
    report = dict(_averages(result), **{
        "num_sequences": result["num_sequences"], "first_frame": cfg.input_frames + 1,
        "lead_frames": forecast_frames(cfg), "trained_output_frames": cfg.output_frames,
        "rollout": rollout_note(cfg) if cfg.baseline == "none" else "",
        "per_frame": result["per_frame"],
        "checkpoint": None if cfg.baseline != "none" or not cfg.ckpt_file else os.path.abspath(cfg.ckpt_file),
        "baseline": None if cfg.baseline == "none" else cfg.baseline,
        "dataset": data["dataset"], "data_path": data["data_path"], "data": data["description"],
        "definitions": "mse/mae: per-frame SUM over pixels (every predicted channel: target_channels) in [0,1] "
                       "(pred clipped); ssim: skimage "
                       "structural_similarity data_range=1.0, mean over channels; ssim_openstl: as OpenSTL computes "
                       "it (data_range 2.0, float32), comparable only with OpenSTL's SSIM; psnr: -10*log10(mean pixel "
                       "MSE), capped at 100 dB; averages over sequences and predicted frames",
        "timing": result["timing"],
        "created": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": [script] + list(argv or []),
        "config": cfg.to_dict()})
    if "no_data" in result:
        report["no_data"] = result["no_data"]
    if exported is not None:  # "checkpoint" is then the one the file was exported from
        report.update(model_file=os.path.abspath(exported.name), engine=exported.engine)
    report.update(scores_report(references, skills, units))
    return report


def scores_report(references, skills, units):
    """metrics.json's "baselines" and "skill_scores" entries, each only when scored."""
    report = {}
    if references:
        report["baselines"] = {name: dict(_averages(r), per_frame=r["per_frame"]) for name, r in references.items()}
    if skills:
        report["skill_scores"] = dict(skills[MAIN], units=units)
        for name in references:
            report["baselines"][name]["skill_scores"] = dict(skills[name], units=units)
    return report


USEFUL_LABEL = "FSS useful: 0.5 + f0/2"  # the skill plot's reference series (Roberts and Lean 2008)


def _fss_curves(result, k):
    """{"fss_<n>": FSS per lead frame} of a skill-scores result's FSS at threshold index ``k`` ({} without FSS)."""
    if "fss" not in result:
        return {}
    return {f"fss_{s['scale']}": s["per_lead_frame"]["fss"] for s in result["fss"]["by_threshold"][k]["by_scale"]}


def plot_skill_scores(out_dir, skills, first_frame, main_label):
    """skill_per_frame.png: CSI, HSS and the FSS at each scale per lead frame and threshold, model and baselines;
    the FSS charts also show the useful-skill line 0.5 + f0/2 of the observations."""
    labels = {name: _label(name, main_label) for name in skills}
    main = skills[MAIN]
    scales = main["fss"]["scales"] if "fss" in main else []
    scores = ("csi", "hss") + tuple(f"fss_{n}" for n in scales)
    titles = {f"fss_{n}": f"FSS n={n}," for n in scales}
    by_threshold = []
    for k, entry in enumerate(main["by_threshold"]):
        curves = {labels[name]: dict(skills[name]["by_threshold"][k]["per_lead_frame"], **_fss_curves(skills[name], k))
                  for name in skills}
        if scales:  # the reference: defined in the FSS charts only
            lead_frames = len(entry["per_lead_frame"]["csi"])
            uniform = main["fss"]["by_threshold"][k]["per_lead_frame"]["uniform_fss"]
            curves[USEFUL_LABEL] = dict({s: [None] * lead_frames for s in ("csi", "hss")},
                                        **{f"fss_{n}": uniform for n in scales})
        by_threshold.append((entry["threshold"], curves))
    return save_skill_plot(os.path.join(out_dir, SKILL_PLOT), by_threshold, first_frame=first_frame, scores=scores,
                           titles=titles)


# ---------------------------------------------------------------- the steps of eval.py and eval_onnx.py

@dataclass
class Scores:
    """What :func:`score` measured."""

    result: dict  # the model's metrics: averages, per_frame, timing (src.evaluation.evaluate)
    references: dict  # reference baseline -> its metrics on the same sequences
    skills: dict  # name (MAIN: the model) -> skill scores in the data's units; {} without thresholds
    units: str  # what the thresholds are in
    pictures: SequencePictures  # the pictures written as the batches went by


def score(cfg, model, source, data, out_dir):
    """Run ``model`` (src.evaluation.ModelUnderTest) over ``source``: its metrics, the reference baselines'
    on the same sequences, skill scores with ``--thresholds`` and the first ``save_vis`` pictures."""
    to_units, units = units_of(cfg, source)
    os.makedirs(out_dir, exist_ok=True)
    print(f"evaluating {model.name} on {len(source)} sequences of {data['description']}"
          f"{' (' + data['data_path'] + ')' if data['data_path'] else ''}, batch {cfg.eval_batch_size}, "
          f"{model.runs_on}; results in {out_dir}", flush=True)
    record = checkpoint_record(cfg.ckpt_file) if model.exported is None and cfg.baseline == "none" else ""
    if record:  # when it was saved and the score that chose best.ckpt
        print(record, flush=True)
    pictures = SequencePictures(os.path.join(out_dir, VIS_DIR), min(cfg.save_vis, len(source)),
                                picture_colours(cfg, to_units), cfg.target_channels)
    references = reference_baselines(cfg.dataset) if cfg.baseline == "none" else ()
    if cfg.baseline == "none" and rollout_note(cfg):
        print(rollout_note(cfg), flush=True)
    hooks = BatchExtras(cfg.thresholds, forecast_frames(cfg), references=references, to_units=to_units,
                        balance=balance_of(cfg), pictures=pictures, fss_scales=cfg.fss_scales,
                        no_data=bool(cfg.nodata), target_channels=cfg.target_channels)
    result = evaluate(cfg, model.predict, source, on_batch=hooks)
    return Scores(result, {name: metrics.result() for name, metrics in hooks.references.items()},
                  hooks.skill_results(), units, pictures)


def report(cfg, model, scores, data, out_dir, argv, script="eval.py"):
    """Print the metric table, the comparison with the baselines, the skill scores and the time; write
    metrics.json and the plots; the last line sums up. Returns 0 (the exit code)."""
    result, references, skills = scores.result, scores.references, scores.skills
    main_label = "model" if cfg.baseline == "none" else _label(cfg.baseline)
    first_frame = cfg.input_frames + 1
    _say(format_table(result, first_frame=first_frame))
    if "no_data" in result:
        _say(no_data_line(result["no_data"], cfg.nodata))
    print_baseline_comparison(result, references)
    print_skill_scores(skills, scores.units, main_label)
    timing = result["timing"]
    compiled = " incl. graph compilation" if model.compiles else ""
    print(f"time: {format_duration(timing['total_s'])} ({timing['sequences_per_s']} sequences/s; first batch "
          f"{timing['first_batch_s']:.1f} s{compiled})", flush=True)

    report_json = build_report(cfg, result, data, references, argv, model.exported, script, skills=skills,
                               units=scores.units)
    json_path = write_json_atomic(os.path.join(out_dir, METRICS_JSON), report_json)
    compare = {name: r["per_frame"] for name, r in references.items()} or None
    plot_path = save_metric_plot(os.path.join(out_dir, METRICS_PLOT), result["per_frame"], first_frame=first_frame,
                                 compare=compare, label="model" if cfg.baseline == "none" else cfg.baseline)
    _say(f"metrics: {json_path}", f"per-frame plot: {plot_path}")
    if skills:
        _say(f"skill-score plot: {plot_skill_scores(out_dir, skills, first_frame, main_label)}")
    _say(*(f"picture: {path}" for path in scores.pictures.written), summary_line(result, model.name, data))
    return 0


def _cli(argv):
    """``python -m src.eval_report --print_eval_dir [eval.py arguments]`` (used by run_eval.sh)."""
    if argv[:1] != ["--print_eval_dir"]:
        print("usage: python -m src.eval_report --print_eval_dir [--config_path F] [--key value ...]",
              file=sys.stderr)
        return 1
    print(eval_dir(config_of_record(argv[1:])))
    return 0


if __name__ == "__main__":
    run_cli(_cli, config_keys=keys_help)
