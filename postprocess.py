"""Compute the evaluation metrics of the Ascend 310 app's outputs.

    python postprocess.py --result_path ./result_Files --preprocess_path ./preprocess_Result [--output_dir .]

Scores RESULT_PATH/seq_<i>_0.bin (raw float32 (1, T_out, C_out, H, W); C_out: the model's target_channels, recorded in
preprocess.json, which the baselines predict too) against PREPROCESS_PATH/label/seq_<i>.npy
with eval.py's code: MSE / MAE (pixel sums), SSIM, PSNR and its reference baselines on the same inputs
(PREPROCESS_PATH/input/seq_<i>.bin). Prints the per-frame and model-vs-baselines tables and writes
OUTPUT_DIR/metrics_310.json (as eval.py's metrics.json; ``data``: what preprocess.py wrote, with a note when
those windows are not held-out). ``--thresholds [20,35]`` adds POD/FAR/CSI/HSS in
the data's units (Moving MNIST: pixel values in [0, 1]) for the model and every baseline, their Fractions Skill
Score at ``--fss_scales`` (pixels; default eval.py's fss_scales [1,5,15]; [] for none), and the balanced
errors B-MSE/B-MAE when preprocess.json records intensity classes (dBZ data, or loss_thresholds/loss_weights).
"""
import json
import os

import numpy as np

from src.cli import run_cli
from src.config import SCHEMA, checked_value
from src.errors import ConfigError, DataError
from src.io import write_json_atomic

OPTIONS = {"result_path": "./result_Files", "preprocess_path": "./preprocess_Result", "output_dir": ".",
           "thresholds": "", "fss_scales": str(SCHEMA["fss_scales"].default).replace(" ", "")}
MANIFEST = "preprocess.json"
RESULT_JSON = "metrics_310.json"
CHUNK = 32  # sequences per metrics update


def read_manifest(preprocess_path):
    path = os.path.join(preprocess_path, MANIFEST)
    if not os.path.isfile(path):
        raise DataError(f"{path} not found; --preprocess_path must be the directory written by preprocess.py")
    try:
        with open(path, "r", encoding="utf-8") as f:
            manifest = json.load(f)
        _ = manifest["names"], manifest["input_shape"], manifest["output_shape"], manifest["label_shape"]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path} is not a preprocess.py manifest; run preprocess.py again") from None
    if not manifest["names"]:
        raise DataError(f"{path} lists no sequences; run preprocess.py with --num_sequences 0 or more")
    return manifest


def read_label(path, shape, dtype="uint8"):
    """Ground truth -> float32: uint8 (T_out, H, W) / 255 as the test-set reader does, own float32 as is."""
    if not os.path.isfile(path):
        raise DataError(f"label {path} not found; run preprocess.py again")
    labels = np.load(path, allow_pickle=False)
    if labels.shape != tuple(shape) or labels.dtype != np.dtype(dtype):
        raise DataError(f"label {path} is {labels.dtype} {labels.shape}; expected {dtype} {tuple(shape)}")
    return labels.astype(np.float32) / 255.0 if labels.dtype == np.uint8 else labels


def check_results_present(result_path, names):
    from src.export.bin_files import result_file_name

    if not os.path.isdir(result_path):
        raise DataError(f"--result_path {result_path} is not a directory (the inference app writes result_Files)")
    missing = [n for n in names if not os.path.isfile(os.path.join(result_path, result_file_name(n)))]
    if missing:
        raise DataError(f"{len(missing)} of {len(names)} outputs missing in {result_path} (first: "
                        f"{result_file_name(missing[0])}); the inference app did not finish, see infer.log")


def parse_thresholds(text):
    """--thresholds "[20,35]" / "20,35" -> list of floats ([] when not given)."""
    try:
        values = [float(v) for v in str(text).strip().strip("[]").replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"option --thresholds: expected numbers such as [20,35], got {text!r}") from None
    if len(set(values)) != len(values) or not all(np.isfinite(values)):
        raise ConfigError(f"option --thresholds: expected distinct finite numbers, got {text!r}")
    return values


def units(manifest):
    """(to_units, description) of the thresholds' units, the recorded normalisation undone as in eval.py."""
    from src.data.sequences import Normalization
    from src.evaluation import units_of_normalization

    if "normalization" not in manifest:
        return units_of_normalization(None)
    return units_of_normalization(Normalization.from_dict(manifest["normalization"], "preprocess.json normalization"))


def balance(manifest):
    """(thresholds, weights) of B-MSE/B-MAE that preprocess.py recorded from the model's config, or None."""
    record = manifest.get("balance")
    return None if not record else (tuple(record["thresholds"]), tuple(record["weights"]))


def read_chunk(manifest, result_path, preprocess_path, chunk):
    """(inputs (b, T_in, C, H, W), outputs (b, T_out, C, H, W), labels shaped as outputs) of ``chunk``."""
    from src.export.bin_files import read_bin, result_file_name

    in_shape, out_shape = tuple(manifest["input_shape"]), tuple(manifest["output_shape"])
    label_shape, label_dtype = tuple(manifest["label_shape"]), manifest.get("label_dtype", "uint8")
    inputs = np.stack([read_bin(os.path.join(preprocess_path, "input", n + ".bin"), in_shape)[0] for n in chunk])
    preds = np.stack([read_bin(os.path.join(result_path, result_file_name(n)), out_shape)[0] for n in chunk])
    labels = np.stack([read_label(os.path.join(preprocess_path, "label", n + ".npy"), label_shape, label_dtype)
                       for n in chunk])  # (b, T_out, C, H, W), or (b, T_out, H, W) for uint8 labels
    return inputs, preds, labels.reshape(preds.shape)


def has_no_data(manifest):
    """Whether the labels mark no-data pixels with NaN: the model's normalisation declares ``nodata``."""
    return bool(manifest.get("normalization", {}).get("nodata"))


def compute(manifest, result_path, preprocess_path, thresholds=(), fss_scales=()):
    """(metrics result, {baseline: metrics result}, {predictor: skill scores (+ FSS at ``fss_scales``)} or {})
    over all sequences."""
    from src.evaluation import BatchExtras, reference_baselines
    from src.metrics import StreamingMetrics, split_no_data

    names = manifest["names"]
    check_results_present(result_path, names)
    metrics = StreamingMetrics()
    hooks = BatchExtras(thresholds, manifest["output_shape"][1],
                       references=reference_baselines(manifest.get("dataset", "mnist")),
                       to_units=units(manifest)[0], balance=balance(manifest), fss_scales=fss_scales,
                       no_data=has_no_data(manifest), target_channels=manifest.get("target_channels", ()))
    for start in range(0, len(names), CHUNK):
        inputs, preds, labels = read_chunk(manifest, result_path, preprocess_path, names[start:start + CHUNK])
        metrics.update(preds, *(split_no_data(labels) if hooks.no_data else (labels, None)))  # NaN: no data
        hooks(start, inputs, labels, preds)
    return metrics.result(), {n: r.result() for n, r in hooks.references.items()}, hooks.skill_results()


def write_json(output_dir, result, manifest, result_path, references=None, skills=None):
    """metrics_310.json: the metrics, plus the baselines and skill scores in eval.py's metrics.json form."""
    from src.eval_report import scores_report

    os.makedirs(output_dir, exist_ok=True)
    payload = dict(result, result_path=os.path.abspath(result_path), data_file=manifest.get("data_file", ""),
                   data=manifest.get("description", ""))
    payload.update(scores_report(references or {}, skills or {}, units(manifest)[1]))
    return write_json_atomic(os.path.join(output_dir, RESULT_JSON), payload)


def main(argv):
    from src.data.split_record import NOT_HELD_OUT
    from src.eval_report import print_baseline_comparison, print_skill_scores
    from src.evaluation import MAIN
    from src.metrics import format_table
    from src.cli import split_options

    options, rest = split_options(argv, OPTIONS, config_keys=())  # it takes no config keys
    rest.pop("debug", None)
    if rest:
        raise ConfigError(f"unknown option --{next(iter(rest))}; postprocess.py takes --result_path, "
                          "--preprocess_path, --output_dir, --thresholds and --fss_scales")
    thresholds = parse_thresholds(options["thresholds"])
    fss_scales = checked_value("fss_scales", options["fss_scales"], "option --fss_scales")
    manifest = read_manifest(options["preprocess_path"])
    result, references, skills = compute(manifest, options["result_path"], options["preprocess_path"], thresholds,
                                         fss_scales)
    print(format_table(result, first_frame=manifest["input_shape"][1] + 1))
    print_baseline_comparison(result, references)
    print_skill_scores(skills, units(manifest)[1], "model")
    if skills and "balanced" not in skills[MAIN] and manifest.get("dataset") == "sequences":
        print("note: no balanced errors: preprocess.json records no intensity classes (not dBZ data and no "
              "loss_thresholds, or written by an older preprocess.py)")
    if NOT_HELD_OUT in manifest.get("description", ""):  # preprocess.py --eval_split all on a model's data
        print(f"note: these scores are {NOT_HELD_OUT}: {manifest['description']}")
    path = write_json(options["output_dir"], result, manifest, options["result_path"], references, skills)
    print(f"metrics: {path}")
    return 0


if __name__ == "__main__":
    run_cli(main, doc=__doc__, options=OPTIONS)
