"""Predict the next frames of Moving MNIST sequences with an exported model or a checkpoint.

    python predict.py --mindir_file convlstm.mindir --input my_sequences.npy [--output_dir DIR] [--save_vis 4]
    python predict.py --mindir_file convlstm.mindir --data_path ./data --num_sequences 100
    python predict.py --ckpt_file OUTPUT_DIR/ckpt/best.ckpt --dataset synthetic --num_sequences 8
    python predict.py --mindir_file convlstm.mindir --ckpt_file best.ckpt --input x.npy   # + parity check
    python predict.py --mindir_file convlstm.mindir --bin_dir preprocess_Result/input     # CPU stand-in for the 310 app

Inputs (exactly one):
  --input FILE.npy     (N, 10, 64, 64) or (10, 64, 64); uint8 pixels 0..255 or float pixels 0..1
  --data_path PATH     mnist_test_seq.npy (or its directory), first --num_sequences sequences (0 = all)
  --dataset synthetic  the fixed generated validation sequences (embedded digits, no download)
  --bin_dir DIR        preprocess.py's input/*.bin files; writes <name>_0.bin like the Ascend 310 app
                       into --result_dir (default OUTPUT_DIR/result_Files)

Writes OUTPUT_DIR/predictions.npy, (N, T_out, 64, 64) float32 in [0, 1], and for the first
--save_vis sequences a PNG strip and (when the ground truth is known) a comparison GIF under
OUTPUT_DIR/vis/. With ground truth the metrics table is printed too. Given both --mindir_file
and --ckpt_file, both run on the same inputs, the largest absolute difference is printed, and
the run fails when it exceeds --tolerance (default 1e-5; raise it for float16 devices).
"""
import os

import numpy as np

from src.config import load_config
from src.errors import ConfigError, DataError, run_cli

OPTIONS = {"mindir_file": "", "input": "", "bin_dir": "", "result_dir": "", "tolerance": "1e-5"}
SYNTHETIC_DEFAULT_COUNT = 8


# ---------------------------------------------------------------- model and config

def _argv(overrides):
    return [f"--{k}={v}" for k, v in overrides.items()]


def resolve_config(options, overrides):
    """Config: --config_path if given, else the one stored in the model file or checkpoint; + overrides.

    Returns (cfg, mindir_info or None).
    """
    from src.inference import apply_overrides, read_mindir_info
    from src.training.checkpoint import read_checkpoint_config

    info = read_mindir_info(options["mindir_file"]) if options["mindir_file"] else None
    if "config_path" in overrides:
        cfg = load_config(_argv(overrides))
    elif info is not None:
        base = info.config or load_config()  # a MINDIR from elsewhere: defaults + its shapes
        base = base.replace(input_frames=info.input_frames, output_frames=info.output_frames,
                            image_size=info.image_size)
        cfg = apply_overrides(base, overrides)
    elif overrides.get("ckpt_file"):
        cfg = apply_overrides(read_checkpoint_config(overrides["ckpt_file"]), overrides)
    else:
        raise ConfigError("no model given: pass --mindir_file FILE.mindir (from export.py) or --ckpt_file CKPT")
    if info is not None:
        _check_signature(info, cfg)
    return cfg, info


def _check_signature(info, cfg):
    got = (info.input_frames, info.output_frames, info.image_size)
    want = (cfg.input_frames, cfg.output_frames, cfg.image_size)
    if got != want:
        raise ConfigError(f"model {info.path} maps {got[0]} -> {got[1]} frames of {got[2]}x{got[2]} but the config "
                          f"asks for {want[0]} -> {want[1]} frames of {want[2]}x{want[2]}; drop the conflicting keys")


def build_predictors(cfg, info, mindir_file, use_ckpt):
    """(main predictor, checkpoint predictor for the parity check or None).

    ``use_ckpt``: run the checkpoint too (given on the command line); a MINDIR's stored config
    also names the checkpoint it came from, which is not run unless asked for.
    """
    from src.inference import Predictor

    from_ckpt = None
    if use_ckpt or info is None:
        from src.training.checkpoint import load_network_from_checkpoint
        from src.training.step import build_predict_fn

        net, _ = load_network_from_checkpoint(cfg.ckpt_file, cfg)
        batch = info.batch_size if info is not None else cfg.eval_batch_size
        from_ckpt = Predictor.from_network(build_predict_fn(cfg, net), cfg, batch, cfg.ckpt_file)
    if info is None:
        return from_ckpt, None
    exported, _ = Predictor.from_mindir(mindir_file)
    return exported, from_ckpt


# ---------------------------------------------------------------- input sources

class ArraySource:
    """A user's array as a source: ``source[i] -> (inputs (T_in, 1, H, W), None)``."""

    def __init__(self, inputs):
        self.inputs = inputs  # (N, T_in, 1, H, W) float32

    def __len__(self):
        return len(self.inputs)

    def __getitem__(self, i):
        return self.inputs[i], None


def _count(n):
    return f"{n} sequence" + ("" if n == 1 else "s")


def open_source(options, overrides, cfg):
    """The sequences to predict, as a random-access source; (source, description)."""
    from src.inference import load_user_array, normalise_user_array

    chosen = [name for name, on in (("--input", bool(options["input"])), ("--data_path", "data_path" in overrides),
                                    ("--dataset", "dataset" in overrides)) if on]
    if len(chosen) > 1:
        raise ConfigError(f"give one input source, got {' and '.join(chosen)}")
    if options["input"]:
        arr = normalise_user_array(load_user_array(options["input"]), options["input"], cfg.input_frames,
                                   cfg.image_size)  # (N, T_in, 1, H, W)
        if cfg.num_sequences:
            arr = arr[:cfg.num_sequences]
        return ArraySource(arr), f"{options['input']} ({_count(len(arr))})"
    if "dataset" in overrides and cfg.dataset == "synthetic":
        from src.data.pipeline import load_digits, validation_source

        count = cfg.num_sequences or SYNTHETIC_DEFAULT_COUNT
        synth = cfg.replace(val_sequences=count)
        source = validation_source(synth, load_digits(synth, "val"))
        return source, f"{_count(count)} generated from synthetic digits (val_seed {cfg.val_seed})"
    if "data_path" in overrides or "dataset" in overrides:
        from src.data.test_set import TestSequences, resolve_test_file

        path = resolve_test_file(cfg.data_path)
        source = TestSequences(path, cfg.num_sequences, cfg.input_frames, cfg.output_frames, cfg.image_size)
        return source, f"{path} (first {_count(len(source))})"
    raise ConfigError("no input given: pass --input FILE.npy ((N, 10, 64, 64) or (10, 64, 64)), "
                      "--data_path DIR_OR_mnist_test_seq.npy, or --dataset synthetic")


def batches(source, batch_size):
    """Yield (start, inputs (b, T_in, 1, H, W), targets (b, T_out, 1, H, W) or None)."""
    for start in range(0, len(source), batch_size):
        items = [source[i] for i in range(start, min(start + batch_size, len(source)))]
        targets = None if items[0][1] is None else np.stack([y for _, y in items])
        yield start, np.stack([x for x, _ in items]), targets


# ---------------------------------------------------------------- outputs

def open_predictions_file(path, count, frames, size):
    """A memory-mapped (N, T_out, H, W) float32 .npy written in place of a temporary file."""
    tmp = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{os.path.basename(path)}")
    return tmp, np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(count, frames, size, size))


def save_pictures(vis_dir, index, inputs, pred, target):
    """Strip (+ GIF with ground truth) of one sequence; returns the written paths."""
    from src import visualize

    stem = os.path.join(vis_dir, f"seq_{index:04d}")
    if target is not None:
        return [visualize.save_sequence_strip(stem + ".png", inputs, target, pred, scale=2),
                visualize.save_comparison_gif(stem + ".gif", target, pred, inputs=inputs)]
    # no ground truth (a user's own frames): a strip of the input and prediction rows
    return [visualize.save_sequence_strip(stem + ".png", inputs, None, pred, scale=2)]


class ParityTracker:
    """Largest |main - checkpoint| difference seen over all batches."""

    def __init__(self):
        self.max_diff = 0.0

    def update(self, a, b):
        from src.inference import max_abs_difference

        self.max_diff = max(self.max_diff, max_abs_difference(a, b))


def run_predictions(predictor, reference, source, cfg):
    """Predict every sequence of ``source``; write predictions.npy, pictures, metrics. Returns a summary."""
    from src.metrics import StreamingMetrics, format_table

    os.makedirs(cfg.output_dir, exist_ok=True)
    path = os.path.join(cfg.output_dir, "predictions.npy")
    tmp, out = open_predictions_file(path, len(source), cfg.output_frames, cfg.image_size)
    metrics, parity, pictures = StreamingMetrics(), ParityTracker() if reference else None, []
    try:
        for start, inputs, targets in batches(source, max(predictor.batch_size, 1)):
            pred = np.clip(predictor.predict(inputs), 0.0, 1.0)  # (b, T_out, 1, H, W)
            out[start:start + len(pred)] = pred[:, :, 0]
            if reference is not None:
                parity.update(pred, np.clip(reference.predict(inputs), 0.0, 1.0))
            if targets is not None:
                metrics.update(pred, targets)
            for k in range(max(0, min(len(pred), cfg.save_vis - start))):
                pictures += save_pictures(os.path.join(cfg.output_dir, "vis"), start + k, inputs[k], pred[k],
                                          None if targets is None else targets[k])
        out.flush()
        del out
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    print(f"predictions: {path} shape ({len(source)}, {cfg.output_frames}, {cfg.image_size}, {cfg.image_size}) "
          "float32 in [0, 1]")
    for p in pictures:
        print(f"picture: {p}")
    if metrics.num_sequences:
        print(format_table(metrics.result(), first_frame=cfg.input_frames + 1))
    if parity is not None:
        print(f"parity: max |mindir - checkpoint| = {parity.max_diff:.3e} over {_count(len(source))}")
    return path, parity


def check_parity(parity, tolerance, mindir_file, ckpt_file):
    from src.inference import ModelFileError

    if parity is not None and parity.max_diff > tolerance:
        raise ModelFileError(f"parity check failed: {mindir_file} and {ckpt_file} differ by up to "
                             f"{parity.max_diff:.3e} (> --tolerance {tolerance:g}); was the MINDIR exported from "
                             "this checkpoint?")


def run_bin_folder(predictor, options, cfg):
    from src.inference import predict_bin_folder

    if not os.path.isdir(options["bin_dir"]):
        raise DataError(f"--bin_dir {options['bin_dir']} is not a directory (preprocess.py writes RESULT/input)")
    result_dir = options["result_dir"] or os.path.join(cfg.output_dir, "result_Files")
    count = predict_bin_folder(predictor, options["bin_dir"], result_dir)
    print(f"wrote {count} output files to {result_dir}")
    return result_dir


def main(argv):
    from src.inference import parse_float, split_options

    options, overrides = split_options(argv, OPTIONS)
    tolerance = parse_float(options["tolerance"], "tolerance")
    cfg, info = resolve_config(options, overrides)
    if options["bin_dir"] and (options["input"] or "data_path" in overrides or "dataset" in overrides):
        raise ConfigError("--bin_dir replaces --input/--data_path/--dataset; give only one of them")
    source, description = (None, "") if options["bin_dir"] else open_source(options, overrides, cfg)

    from src.inference import init_inference_device

    init_inference_device(cfg)
    predictor, reference = build_predictors(cfg, info, options["mindir_file"], "ckpt_file" in overrides)
    model = options["mindir_file"] or cfg.ckpt_file
    print(f"model: {model} (batch {predictor.batch_size}, {cfg.input_frames} -> {cfg.output_frames} frames of "
          f"{cfg.image_size}x{cfg.image_size})", flush=True)
    if options["bin_dir"]:
        run_bin_folder(predictor, options, cfg)
        return 0
    print(f"input: {description}", flush=True)
    _, parity = run_predictions(predictor, reference, source, cfg)
    check_parity(parity, tolerance, options["mindir_file"], cfg.ckpt_file)
    return 0


if __name__ == "__main__":
    run_cli(main)
