"""Predict the next frames of Moving MNIST or own sequences with an exported model or a checkpoint.

    python predict.py --mindir_file convlstm.mindir --input my_sequences.npy [--output_dir DIR] [--save_vis 4]
    python predict.py --onnx_file convlstm.onnx --input my_sequences.npy          # ONNX Runtime, no MindSpore
    python predict.py --mindir_file convlstm.mindir --data_path ./data --num_sequences 100
    python predict.py --ckpt_file OUTPUT_DIR/ckpt/best.ckpt --dataset synthetic --num_sequences 8
    python predict.py --mindir_file convlstm.mindir --ckpt_file best.ckpt --input x.npy   # + parity check
    python predict.py --mindir_file convlstm.mindir --bin_dir preprocess_Result/input     # CPU stand-in for the 310 app

Inputs (exactly one):
  --input FILE.npy     (N, 10, 64, 64) or (10, 64, 64); uint8 pixels 0..255 or float pixels 0..1
  --data_path PATH     mnist_test_seq.npy (or its directory), first --num_sequences sequences (0 = all)
  --dataset synthetic  eval.py's fixed generated test sequences (embedded digits, no download)
  --bin_dir DIR        preprocess.py's input/*.bin files; writes <name>_0.bin like the Ascend 310 app
                       into --result_dir (default OUTPUT_DIR/result_Files)
A model of own sequences reads --input as training read its data (data_layout or --data_layout; --npz_key):
input_frames frames are forecast; input_frames + output_frames or more give every window, scored. Then
predictions.npy is in that layout and the data's units. --data_path gives the windows eval.py would score,
refused like eval.py refuses them when the file is not the one the model was trained on (--eval_split all).
An exported model file carries its config: no other flag is needed. --lead_frames N forecasts N frames, past
the model's output_frames by rolling it forward on its own predictions (docs/own_data.md).

Writes OUTPUT_DIR/predictions.npy ((N, T_out, 64, 64) float32 in [0, 1] for Moving MNIST), PNG strips and
(with ground truth) GIFs of the first --save_vis sequences under OUTPUT_DIR/vis/, and the metrics table when
there is ground truth. An exported model and --ckpt_file both run; the run fails when they differ by more
than --tolerance (default 1e-5; raise it for float16 devices).
"""
import os

import numpy as np

from src.cli import run_cli
from src.config import keys_help
from src.errors import ConfigError, DataError

OPTIONS = {"mindir_file": "", "onnx_file": "", "input": "", "bin_dir": "", "result_dir": "", "tolerance": "1e-5"}


def model_config(options, overrides):
    """(cfg, ModelInfo or None): the config stored in the model file or checkpoint, plus the command line."""
    from src.config import resolve_config
    from src.cli import overrides_argv
    from src.export.model_info import config_for_model, read_model_info

    def test_file_dataset(stored):  # --data_path alone: mnist_test_seq.npy, unless the model is of own sequences
        if "data_path" in overrides and "dataset" not in overrides and getattr(stored, "dataset", "") != "sequences":
            return dict(overrides, dataset="mnist")
        return overrides

    given = [(options[k], fmt) for k, fmt in (("mindir_file", "MINDIR"), ("onnx_file", "ONNX")) if options[k]]
    if len(given) > 1:
        raise ConfigError("give one exported model: --mindir_file or --onnx_file, not both")
    if given:
        info = read_model_info(*given[0])
        return config_for_model(info, test_file_dataset(info.config)), info
    if overrides.get("ckpt_file"):
        from src.checkpoint import read_checkpoint_config

        stored = read_checkpoint_config(overrides["ckpt_file"])
        return resolve_config(overrides_argv(test_file_dataset(stored)), stored, overrides["ckpt_file"]), None
    raise ConfigError("no model given: pass --mindir_file FILE.mindir or --onnx_file FILE.onnx (from export.py) "
                      "or --ckpt_file CKPT")


def build_predictors(cfg, info, use_ckpt, lead):
    """(main predictor, checkpoint predictor for the parity check (with --ckpt_file) or None), both rolled out
    to ``lead`` frames."""
    from src.evaluation import checkpoint_predictor
    from src.predictor import BatchPredictor, for_lead_frames
    from src.device import init_inference_device

    if info is None or info.file_format == "MINDIR" or use_ckpt:  # ONNX Runtime alone needs no MindSpore
        init_inference_device(cfg)
    # the exported model's batch size and frame (maybe a deployment frame, export.py --export_height): both run
    # the same batches
    from_ckpt = checkpoint_predictor(cfg, info.batch_size if info is not None else 0, any_frame=info is not None) \
        if use_ckpt or info is None else None
    main, reference = (from_ckpt, None) if info is None else (BatchPredictor.from_model(info), from_ckpt)
    return for_lead_frames(main, lead), reference and for_lead_frames(reference, lead)


class ParityTracker:
    """Largest |main - reference| difference over all batches, the reference run on the same inputs."""

    def __init__(self, reference):
        self.reference, self.max_diff = reference, 0.0

    def __call__(self, start, inputs, targets, pred):
        from src.predictor import max_abs_difference

        reference = np.clip(self.reference.predict(inputs), 0.0, 1.0)
        self.max_diff = max(self.max_diff, max_abs_difference(pred, reference))


def run_predictions(predictor, reference, source, cfg):
    """Predict, write predictions.npy and pictures, print the metrics -> (path, ParityTracker or None)."""
    from src.evaluation import PredictionsFile, SequencePictures, count_text, evaluate, picture_colours, units_of
    from src.io import atomic_path
    from src.metrics import format_table

    os.makedirs(cfg.output_dir, exist_ok=True)
    path = os.path.join(cfg.output_dir, "predictions.npy")
    pictures = SequencePictures(os.path.join(cfg.output_dir, "vis"), cfg.save_vis,
                                picture_colours(cfg, units_of(cfg, source)[0]), cfg.target_channels)
    parity = ParityTracker(reference) if reference is not None else None
    with atomic_path(path) as tmp:
        out = PredictionsFile(tmp, len(source), cfg, predictor.output_shape, getattr(source, "normalization", None))
        writers = [out, pictures] + ([parity] if parity is not None else [])

        def on_batch(*batch):
            for write in writers:
                write(*batch)

        result = evaluate(cfg.replace(eval_batch_size=max(predictor.batch_size, 1)),  # the model's batches
                          lambda inputs: np.clip(predictor.predict(inputs), 0.0, 1.0), source, on_batch,
                          progress=False)
        out.close()
    print(f"predictions: {out.describe(path)}")
    for p in pictures.written:
        print(f"picture: {p}")
    if result["num_sequences"]:
        print(format_table(result, first_frame=cfg.input_frames + 1))
    if parity is not None:
        print(f"parity: max |exported - checkpoint| = {parity.max_diff:.3e} over {count_text(len(source))}")
    return path, parity


def check_parity(parity, tolerance, model_path, ckpt_file):
    from src.export import ModelFileError

    if parity is not None and parity.max_diff > tolerance:
        raise ModelFileError(f"parity check failed: {model_path} and {ckpt_file} differ by up to "
                             f"{parity.max_diff:.3e} (> --tolerance {tolerance:g}); was the model exported from "
                             "this checkpoint?")


def main(argv):
    from src.cli import parse_float, split_options
    from src.config import COMMAND_LINE_KEYS, forecast_frames
    from src.evaluation import data_of_record, prediction_source, rollout_note

    options, overrides = split_options(argv, OPTIONS, COMMAND_LINE_KEYS)
    tolerance = parse_float(options["tolerance"], "tolerance")
    cfg, info = model_config(options, overrides)
    given = [name for name, on in (("--input", bool(options["input"])), ("--data_path", "data_path" in overrides),
                                   ("--dataset", "dataset" in overrides)) if on]
    if options["bin_dir"] and given:
        raise ConfigError("--bin_dir replaces --input/--data_path/--dataset; give only one of them")
    if options["bin_dir"] and "lead_frames" in overrides:
        raise ConfigError("--lead_frames does not apply to --bin_dir: the Ascend 310 app runs one forward per input "
                          "(output_frames); roll out with --input FILE or --data_path instead")
    if len(given) > 1:
        raise ConfigError(f"give one input source, got {' and '.join(given)}")
    model = info.path if info is not None else cfg.ckpt_file
    if not options["bin_dir"]:
        trained = data_of_record(cfg, info) if given == ["--data_path"] else None  # held-out windows: checked
        source, description = prediction_source(cfg, (given or [None])[0], options["input"], model, trained)
    lead = cfg.output_frames if options["bin_dir"] else forecast_frames(cfg)  # the 310 app: one forward
    predictor, reference = build_predictors(cfg, info, "ckpt_file" in overrides, lead)
    channels, height, width = predictor.input_shape[1:]
    shape = f"{height}x{width}" if channels == 1 else f"{channels}x{height}x{width} (C x H x W)"
    if predictor.output_shape[1] != channels:  # target_channels: the output holds some of the channels
        shape += f", predicting channel(s) {', '.join(map(str, cfg.target_channels))}"
    print(f"model: {model} ({predictor.engine}, batch {predictor.batch_size}, {cfg.input_frames} -> "
          f"{cfg.output_frames} frames of {shape})", flush=True)
    if rollout_note(cfg) and not options["bin_dir"]:
        print(rollout_note(cfg), flush=True)
    if options["bin_dir"]:
        from src.export.bin_files import predict_bin_folder

        if not os.path.isdir(options["bin_dir"]):
            raise DataError(f"--bin_dir {options['bin_dir']} is not a directory (preprocess.py writes RESULT/input)")
        result_dir = options["result_dir"] or os.path.join(cfg.output_dir, "result_Files")
        print(f"wrote {predict_bin_folder(predictor, options['bin_dir'], result_dir)} output files to {result_dir}")
        return 0
    print(f"input: {description}", flush=True)
    check_parity(run_predictions(predictor, reference, source, cfg)[1], tolerance, model, cfg.ckpt_file)
    return 0


if __name__ == "__main__":
    run_cli(main, doc=__doc__, options=OPTIONS, config_keys=keys_help)
