"""Predict the next frames of Moving MNIST or own sequences with an exported model or a checkpoint.

    python predict.py --mindir_file convlstm.mindir --input my_sequences.npy [--output_dir DIR] [--save_vis 4]
    python predict.py --onnx_file convlstm.onnx --input my_sequences.npy          # ONNX Runtime
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

A model trained on own sequences (dataset sequences) reads --input like training read its data:
an .npy/.npz in the model's data_layout (--data_layout to change it; --npz_key), in the data's
own units, normalised with the model's stored normalisation. Sequences of exactly input_frames
frames are forecast after their last frame; sequences of at least input_frames + output_frames
frames give every window, scored against its targets. predictions.npy is then in the same
layout and in the data's units: NTCHW (N, T_out, C, H, W), NTHWC (N, T_out, H, W, C), NTHW
(N, T_out, H, W) or TNHW (T_out, N, H, W). Frames of another shape than the model's are refused
in one line naming both shapes. --data_path gives the windows eval.py would score.

The model: --mindir_file (MindSpore, graph mode), --onnx_file (ONNX Runtime from
requirements-onnx.txt; MindSpore is not used) or --ckpt_file. An exported file carries its
config, so no other flag is needed.

Writes OUTPUT_DIR/predictions.npy, (N, T_out, 64, 64) float32 in [0, 1] (own sequences: see above), and for the first
--save_vis sequences a PNG strip and (when the ground truth is known) a comparison GIF under
OUTPUT_DIR/vis/ (every channel; single-channel dBZ data in radar colours with a colour bar, see
src.evaluation.picture_colours). With ground truth the metrics table is printed too. Given an exported model
and --ckpt_file, both run on the same inputs, the largest absolute difference is printed, and
the run fails when it exceeds --tolerance (default 1e-5; raise it for float16 devices).
"""
import os

import numpy as np

from src.errors import ConfigError, DataError, run_cli
from src.io import move_into_place, sibling_temp

OPTIONS = {"mindir_file": "", "onnx_file": "", "input": "", "bin_dir": "", "result_dir": "", "tolerance": "1e-5"}
SYNTHETIC_DEFAULT_COUNT = 8


# ---------------------------------------------------------------- model and config

def model_file(options):
    """(path, file_format) of the exported model given, or (None, None) for a checkpoint only."""
    given = [(options[k], fmt) for k, fmt in (("mindir_file", "MINDIR"), ("onnx_file", "ONNX")) if options[k]]
    if len(given) > 1:
        raise ConfigError("give one exported model: --mindir_file or --onnx_file, not both")
    return given[0] if given else (None, None)


def _test_file_dataset(overrides, stored):
    """``--data_path`` alone names mnist_test_seq.npy for a Moving MNIST model (dataset mnist); a
    model trained on own sequences reads its own kind of file there."""
    if "data_path" in overrides and "dataset" not in overrides and getattr(stored, "dataset", "") != "sequences":
        return dict(overrides, dataset="mnist")
    return overrides


def resolve_config(options, overrides):
    """Config: the one stored in the model file or checkpoint, resolved with the command line
    (``src.config.resolve_config``).

    Returns (cfg, ModelInfo of the exported model or None).
    """
    from src.config import resolve_config as resolve
    from src.export.model_info import read_model_info
    from src.cli import config_for_model, overrides_argv

    path, file_format = model_file(options)
    if path is not None:
        info = read_model_info(path, file_format)
        return config_for_model(info, _test_file_dataset(overrides, info.config)), info
    if overrides.get("ckpt_file"):
        from src.checkpoint import read_checkpoint_config

        ckpt = overrides["ckpt_file"]
        stored = read_checkpoint_config(ckpt)
        return resolve(overrides_argv(_test_file_dataset(overrides, stored)), stored, ckpt), None
    raise ConfigError("no model given: pass --mindir_file FILE.mindir or --onnx_file FILE.onnx (from export.py) "
                      "or --ckpt_file CKPT")


def build_predictors(cfg, info, use_ckpt):
    """(main predictor, checkpoint predictor for the parity check or None).

    ``use_ckpt``: run the checkpoint too (given on the command line); an exported model's stored
    config also names the checkpoint it came from, which is not run unless asked for.
    """
    from src.predictor import BatchPredictor, compiled_forward

    from_ckpt = None
    if use_ckpt or info is None:
        from src.checkpoint import load_network_from_checkpoint

        net, _ = load_network_from_checkpoint(cfg.ckpt_file, cfg)
        batch = info.batch_size if info is not None else cfg.eval_batch_size
        from_ckpt = BatchPredictor.from_network(compiled_forward(net, cfg.mode), cfg, batch, cfg.ckpt_file)
    if info is None:
        return from_ckpt, None
    return BatchPredictor.from_model(info), from_ckpt


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


def open_own_source(options, overrides, cfg):
    """A model trained on own sequences: the user's file (--input) read with the training's
    data_layout and stored normalisation, or with --data_path the windows eval.py would score.
    Frames of another shape than the model's are refused in one line naming both."""
    from src.data.pipeline import WindowSubset, config_for_frames, evaluation_windows, prediction_source

    model = options["mindir_file"] or options["onnx_file"] or cfg.ckpt_file
    if options["input"]:
        source, what = prediction_source(cfg, options["input"]), options["input"]
    elif "data_path" in overrides:
        source, what = evaluation_windows(cfg)
    else:
        raise ConfigError(f"no input given: pass --input FILE (.npy/.npz of sequences in data_layout "
                          f"{cfg.data_layout}, the model's; --data_layout to change it) or --data_path")
    config_for_frames(cfg, (source.channels, source.height, source.width), source.file.dtype, source.path,
                      f"the model {model}")
    if cfg.num_sequences and options["input"]:
        source = WindowSubset(source, np.arange(min(cfg.num_sequences, len(source))))
    scored = "no targets: forecasts after the last frame" if getattr(source, "output_frames", None) is None \
        else "windows scored against their targets"
    return source, f"{what} ({_count(len(source))}, data_layout {cfg.data_layout}; {scored})"


def open_source(options, overrides, cfg):
    """The sequences to predict, as a random-access source; (source, description)."""
    from src.data.sequences import load_user_array, normalise_user_array

    chosen = [name for name, on in (("--input", bool(options["input"])), ("--data_path", "data_path" in overrides),
                                    ("--dataset", "dataset" in overrides)) if on]
    if len(chosen) > 1:
        raise ConfigError(f"give one input source, got {' and '.join(chosen)}")
    if cfg.dataset == "sequences":
        return open_own_source(options, overrides, cfg)
    if options["input"]:
        arr = normalise_user_array(load_user_array(options["input"]), options["input"], cfg.input_frames,
                                   cfg.image_size)  # (N, T_in, 1, H, W)
        if cfg.num_sequences:
            arr = arr[:cfg.num_sequences]
        return ArraySource(arr), f"{options['input']} ({_count(len(arr))})"
    if "dataset" in overrides and cfg.dataset == "synthetic":
        from src.data.pipeline import generated_test_source, load_digits

        count = cfg.num_sequences or SYNTHETIC_DEFAULT_COUNT
        source = generated_test_source(cfg, load_digits(cfg, "val"), count)  # eval.py's set, not the validation set
        return source, f"{_count(count)} generated from synthetic digits (test_seed {cfg.test_seed})"
    if "data_path" in overrides or "dataset" in overrides:
        from src.data.sequences import TestSequences, resolve_test_file

        path = resolve_test_file(cfg.data_path)
        source = TestSequences(path, cfg.num_sequences, cfg.input_frames, cfg.output_frames, cfg.image_size)
        return source, f"{path} (first {_count(len(source))})"
    raise ConfigError("no input given: pass --input FILE.npy ((N, 10, 64, 64) or (10, 64, 64)), "
                      "--data_path DIR_OR_mnist_test_seq.npy, or --dataset synthetic")


# ---------------------------------------------------------------- outputs

class PredictionsFile:
    """predictions.npy, written through a memory map into a temporary file that replaces ``path``
    only when complete. Moving MNIST models: (N, T_out, H, W) in [0, 1]. Models of own sequences:
    the layout of the input (data_layout) and the data's units (the stored normalisation undone)."""

    def __init__(self, path, count, cfg, output_shape, normalization=None):
        """output_shape: (T_out, C, H, W) of one sequence's prediction."""
        from src.data.sequences import layout_shape

        frames, channels, height, width = output_shape
        self.path, self.count, self.cfg = path, count, cfg
        self.normalization = normalization if cfg.dataset == "sequences" else None
        self.layout = cfg.data_layout if self.normalization is not None else "NTHW"
        self.shape = layout_shape(self.layout, count, frames, channels, height, width)
        self.tmp = sibling_temp(path)
        self.out = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=np.float32, shape=self.shape)

    def write(self, start, pred):
        """pred (b, T_out, C, H, W) in [0, 1] for sequences start .. start + b - 1."""
        from src.data.sequences import to_layout

        values = pred if self.normalization is None else self.normalization.denormalize(pred)
        block = to_layout(values, self.layout)
        if self.layout == "TNHW":
            self.out[:, start:start + len(pred)] = block  # (T_out, b, H, W)
        else:
            self.out[start:start + len(pred)] = block

    def finish(self):
        """Every sequence written: move the file into place."""
        self.out.flush()
        self.out = None
        move_into_place(self.tmp, self.path)

    def discard(self):
        """Remove the temporary file if it is still there (after finish, or after a failure)."""
        self.out = None
        if os.path.exists(self.tmp):
            os.remove(self.tmp)

    def describe(self):
        shape = f"({', '.join(map(str, self.shape))})"
        if self.normalization is None:
            return f"{self.path} shape {shape} float32 in [0, 1]"
        n = self.normalization
        return (f"{self.path} shape {shape} float32 (data_layout {self.layout}, in the data's units: [0, 1] mapped "
                f"back to [{n.data_min:g}, {n.data_max:g}])")


def picture_writer(cfg, source):
    """The pictures of the first --save_vis sequences (src.evaluation.SequencePictures): every channel,
    single-channel dBZ data in the radar colour scale of their units."""
    from src.evaluation import SequencePictures, picture_colours

    normalization = getattr(source, "normalization", None)
    colours = picture_colours(cfg, normalization.denormalize) if normalization is not None else None
    return SequencePictures(os.path.join(cfg.output_dir, "vis"), cfg.save_vis, colours)


class ParityTracker:
    """Largest |main - checkpoint| difference seen over all batches."""

    def __init__(self):
        self.max_diff = 0.0

    def update(self, a, b):
        from src.predictor import max_abs_difference

        self.max_diff = max(self.max_diff, max_abs_difference(a, b))


def run_predictions(predictor, reference, source, cfg):
    """Predict every sequence of ``source``; write predictions.npy, pictures, metrics. Returns a summary."""
    from src.data.pipeline import iterate_batches
    from src.metrics import StreamingMetrics, format_table

    os.makedirs(cfg.output_dir, exist_ok=True)
    path = os.path.join(cfg.output_dir, "predictions.npy")
    out = PredictionsFile(path, len(source), cfg, predictor.output_shape, getattr(source, "normalization", None))
    metrics, parity = StreamingMetrics(), ParityTracker() if reference else None
    pictures = picture_writer(cfg, source)
    try:
        for start, inputs, targets in iterate_batches(source, max(predictor.batch_size, 1)):
            pred = np.clip(predictor.predict(inputs), 0.0, 1.0)  # (b, T_out, C, H, W)
            out.write(start, pred)
            if reference is not None:
                parity.update(pred, np.clip(reference.predict(inputs), 0.0, 1.0))
            if targets is not None:
                metrics.update(pred, targets)
            pictures(start, inputs, targets, pred)
        out.finish()
    finally:
        out.discard()
    print(f"predictions: {out.describe()}")
    for p in pictures.written:
        print(f"picture: {p}")
    if metrics.num_sequences:
        print(format_table(metrics.result(), first_frame=cfg.input_frames + 1))
    if parity is not None:
        print(f"parity: max |exported - checkpoint| = {parity.max_diff:.3e} over {_count(len(source))}")
    return path, parity


def check_parity(parity, tolerance, model_path, ckpt_file):
    from src.export import ModelFileError

    if parity is not None and parity.max_diff > tolerance:
        raise ModelFileError(f"parity check failed: {model_path} and {ckpt_file} differ by up to "
                             f"{parity.max_diff:.3e} (> --tolerance {tolerance:g}); was the model exported from "
                             "this checkpoint?")


def run_bin_folder(predictor, options, cfg):
    from src.export.bin_files import predict_bin_folder

    if not os.path.isdir(options["bin_dir"]):
        raise DataError(f"--bin_dir {options['bin_dir']} is not a directory (preprocess.py writes RESULT/input)")
    result_dir = options["result_dir"] or os.path.join(cfg.output_dir, "result_Files")
    count = predict_bin_folder(predictor, options["bin_dir"], result_dir)
    print(f"wrote {count} output files to {result_dir}")
    return result_dir


def main(argv):
    from src.cli import parse_float, split_options

    options, overrides = split_options(argv, OPTIONS)
    tolerance = parse_float(options["tolerance"], "tolerance")
    cfg, info = resolve_config(options, overrides)
    if options["bin_dir"] and (options["input"] or "data_path" in overrides or "dataset" in overrides):
        raise ConfigError("--bin_dir replaces --input/--data_path/--dataset; give only one of them")
    source, description = (None, "") if options["bin_dir"] else open_source(options, overrides, cfg)

    use_ckpt = "ckpt_file" in overrides
    if info is None or info.file_format == "MINDIR" or use_ckpt:  # ONNX Runtime alone needs no MindSpore
        from src.cli import init_inference_device

        init_inference_device(cfg)
    predictor, reference = build_predictors(cfg, info, use_ckpt)
    model = info.path if info is not None else cfg.ckpt_file
    channels, height, width = predictor.input_shape[1:]
    shape = f"{height}x{width}" if channels == 1 else f"{channels}x{height}x{width} (C x H x W)"
    print(f"model: {model} ({predictor.engine}, batch {predictor.batch_size}, {cfg.input_frames} -> "
          f"{cfg.output_frames} frames of {shape})", flush=True)
    if options["bin_dir"]:
        run_bin_folder(predictor, options, cfg)
        return 0
    print(f"input: {description}", flush=True)
    _, parity = run_predictions(predictor, reference, source, cfg)
    check_parity(parity, tolerance, model, cfg.ckpt_file)
    return 0


if __name__ == "__main__":
    run_cli(main, doc=__doc__, options=OPTIONS)
