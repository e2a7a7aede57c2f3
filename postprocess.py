"""Compute the evaluation metrics of the Ascend 310 app's outputs.

    python postprocess.py --result_path ./result_Files --preprocess_path ./preprocess_Result [--output_dir .]

Reads RESULT_PATH/seq_<i>_0.bin (raw float32 (1, T_out, 1, H, W), one per input file written
by preprocess.py) and the matching PREPROCESS_PATH/label/seq_<i>.npy ground truth, and computes
MSE / MAE (pixel sums), SSIM and PSNR with src.metrics.StreamingMetrics, the same code as
eval.py. Prints the per-frame table and writes OUTPUT_DIR/metrics_310.json.
"""
import json
import os

import numpy as np

from src.errors import ConfigError, DataError, run_cli
from src.evaluation import write_json_atomic

OPTIONS = {"result_path": "./result_Files", "preprocess_path": "./preprocess_Result", "output_dir": "."}
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
        _ = manifest["names"], manifest["output_shape"], manifest["label_shape"]
    except (ValueError, KeyError, TypeError):
        raise DataError(f"{path} is not a preprocess.py manifest; run preprocess.py again") from None
    if not manifest["names"]:
        raise DataError(f"{path} lists no sequences; run preprocess.py with --num_sequences 0 or more")
    return manifest


def read_label(path, shape):
    """Ground truth uint8 (T_out, H, W) -> float32 (T_out, H, W) in [0, 1], as the test-set reader does."""
    if not os.path.isfile(path):
        raise DataError(f"label {path} not found; run preprocess.py again")
    labels = np.load(path, allow_pickle=False)
    if labels.shape != tuple(shape) or labels.dtype != np.uint8:
        raise DataError(f"label {path} is {labels.dtype} {labels.shape}; expected uint8 {tuple(shape)}")
    return labels.astype(np.float32) / 255.0


def check_results_present(result_path, names):
    from src.export.bin_files import result_file_name

    if not os.path.isdir(result_path):
        raise DataError(f"--result_path {result_path} is not a directory (the inference app writes result_Files)")
    missing = [n for n in names if not os.path.isfile(os.path.join(result_path, result_file_name(n)))]
    if missing:
        raise DataError(f"{len(missing)} of {len(names)} outputs missing in {result_path} (first: "
                        f"{result_file_name(missing[0])}); the inference app did not finish, see infer.log")


def compute(manifest, result_path, preprocess_path):
    """StreamingMetrics over all sequences of the manifest."""
    from src.export.bin_files import read_bin, result_file_name
    from src.metrics import StreamingMetrics

    names = manifest["names"]
    check_results_present(result_path, names)
    out_shape, label_shape = tuple(manifest["output_shape"]), tuple(manifest["label_shape"])
    metrics = StreamingMetrics()
    for start in range(0, len(names), CHUNK):
        chunk = names[start:start + CHUNK]
        preds = np.stack([read_bin(os.path.join(result_path, result_file_name(n)), out_shape)[0, :, 0]
                          for n in chunk])  # (b, T_out, H, W)
        labels = np.stack([read_label(os.path.join(preprocess_path, "label", n + ".npy"), label_shape)
                           for n in chunk])  # (b, T_out, H, W)
        metrics.update(preds, labels)
    return metrics.result()


def write_json(output_dir, result, manifest, result_path):
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, RESULT_JSON)
    payload = dict(result, result_path=os.path.abspath(result_path), data_file=manifest.get("data_file", ""))
    return write_json_atomic(path, payload)


def main(argv):
    from src.script_options import split_options
    from src.metrics import format_table

    options, rest = split_options(argv, OPTIONS)
    rest.pop("debug", None)
    if rest:
        raise ConfigError(f"unknown option --{next(iter(rest))}; postprocess.py takes --result_path, "
                          "--preprocess_path and --output_dir")
    manifest = read_manifest(options["preprocess_path"])
    result = compute(manifest, options["result_path"], options["preprocess_path"])
    first_frame = manifest["input_shape"][1] + 1 if "input_shape" in manifest else 11
    print(format_table(result, first_frame=first_frame))
    print(f"metrics: {write_json(options['output_dir'], result, manifest, options['result_path'])}")
    return 0


if __name__ == "__main__":
    run_cli(main)
