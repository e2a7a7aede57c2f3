"""The one evaluation loop (eval.py, eval_onnx.py, predict.py, postprocess.py, validation in training), what it
runs on and its per-batch extras: baselines, skill scores, pictures, predictions.npy. Imports nothing from training.
"""
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from src.baselines import predict_baseline, pysteps_methods
from src.checkpoint import load_network_from_checkpoint, read_data_record
from src.config import BASELINES, forecast_frames, is_dbz_data, output_frame_shape
from src.data.archive import unpacked_data_path
from src.data.pipeline import (WindowSubset, config_for_frames, evaluation_windows, generated_test_source,
                               input_file_windows, iterate_batches, load_digits)
from src.data.sequences import (TEST_FILE, layout_shape, load_user_array, normalise_user_array, open_test_file,
                                resolve_test_file, target_frames, to_layout)
from src.data.split_record import TrainedOn
from src.device import init_device
from src.errors import ConfigError
from src.metrics import BalancedErrors, FractionsSkillScore, SkillScores, StreamingMetrics, split_no_data
from src.predictor import BatchPredictor, compiled_forward, for_lead_frames
from src.progress import Progress
from src.visualize import radar_scale, save_comparison_gif, save_sequence_strip

NOWCASTING_BASELINES = ("extrapolation",)  # scored next to a checkpoint of own sequences too
ON_REQUEST_BASELINES = ("pysteps",)  # an optional package: scored only when --baseline names it
MNIST_TEST_FRAMES = 20  # frames per sequence of mnist_test_seq.npy
SYNTHETIC_PREDICTIONS = 8  # predict.py --dataset synthetic without --num_sequences


def reference_baselines(dataset):
    """The baselines scored next to a model of ``dataset``: zeros and copy_last; for own sequences (nowcasting)
    also extrapolation, whose optical flow costs ~30 ms per 64x64 frame pair on CPU (elsewhere on request).
    pysteps is never scored by default (on request: --baseline pysteps)."""
    plain = tuple(b for b in BASELINES if b not in NOWCASTING_BASELINES + ON_REQUEST_BASELINES)
    return plain + (NOWCASTING_BASELINES if dataset == "sequences" else ())


# ---------------------------------------------------------------- what is evaluated or predicted

def data_of_record(cfg, info=None):
    """What the model to evaluate was trained on (src.data.split_record.TrainedOn): the record of the exported
    model ``info`` (a ModelInfo) or of cfg.ckpt_file; None for Moving MNIST or without a model (a baseline)."""
    if cfg.dataset != "sequences":
        return None
    if info is not None:
        return TrainedOn(info.data_record, info.path)
    if cfg.baseline != "none" or not cfg.ckpt_file:
        return None
    return TrainedOn(read_data_record(cfg.ckpt_file), cfg.ckpt_file)


def build_source(cfg, trained=None):
    """The sequences to evaluate and a description of them for metrics.json; own sequences are checked against
    the split of record of ``trained`` (src.data.split_record.TrainedOn, None: no model). Windows hold
    input_frames + lead_frames frames (``forecast_frames``)."""
    cfg = for_forecast(cfg)
    if cfg.dataset == "sequences":
        source, described = evaluation_windows(cfg, trained)
        return source, {"dataset": "sequences", "data_path": os.path.abspath(cfg.data_path), "description": described}
    if cfg.dataset == "mnist":
        path = os.path.abspath(resolve_test_file(unpacked_data_path(cfg, [(TEST_FILE,)])))  # a .zip is unpacked
        source = open_test_file(path, cfg.num_sequences, cfg.input_frames, cfg.output_frames, cfg.image_size)
        return source, {"dataset": "mnist", "data_path": path, "description": "mnist_test_seq.npy"}
    count = cfg.num_sequences or cfg.val_sequences
    if count == 0:
        raise ConfigError("nothing to evaluate: dataset synthetic with val_sequences 0; pass --num_sequences K")
    source = generated_test_source(cfg, load_digits(cfg, "val"), count)
    return source, {"dataset": "synthetic", "data_path": None,
                    "description": f"generated test set: {count} sequences, {cfg.num_digits_val} digits, "
                                   f"test_seed {cfg.test_seed}"}


def for_forecast(cfg):
    """``cfg`` for the data side of a forecast of ``forecast_frames(cfg)`` frames: windows and targets that long."""
    lead = forecast_frames(cfg)
    if cfg.dataset == "mnist" and cfg.input_frames + lead > MNIST_TEST_FRAMES:
        raise ConfigError(f"lead_frames {lead}: mnist_test_seq.npy sequences hold {MNIST_TEST_FRAMES} frames, so at "
                          f"most {MNIST_TEST_FRAMES - cfg.input_frames} frames after input_frames {cfg.input_frames} "
                          "can be scored; use --dataset synthetic (generated sequences of any length), or predict.py "
                          "--input for forecasts without truth")
    return cfg.replace(output_frames=lead)


def config_for_data(cfg, source, model=None):
    """``cfg`` with the frame shape of own sequence data (``source``); one DataError line naming
    both shapes when ``model`` (a checkpoint or model file whose config ``cfg`` is) expects others."""
    if cfg.dataset != "sequences":
        return cfg
    expected_from = f"the model {model}" if model else "the config (channels, frame_height, frame_width)"
    return config_for_frames(cfg, (source.channels, source.height, source.width), source.file.dtype,
                             source.file.path, expected_from)


def count_text(n):
    return f"{n} sequence" + ("" if n == 1 else "s")


def prediction_source(cfg, given, input_file, model, trained=None):
    """(source, description) of predict.py's sequences; ``given``: the one input option used (--input,
    --data_path or --dataset) or None. Own sequences are refused when their frames are not the model's, and
    --data_path when it is not the split of record of ``trained`` (see build_source). Windows with truth hold
    input_frames + lead_frames frames."""
    if cfg.dataset == "sequences" or given != "--input":
        cfg = for_forecast(cfg)
    if cfg.dataset == "sequences":
        if given not in ("--input", "--data_path"):
            raise ConfigError(f"no input given: pass --input FILE (.npy/.npz of sequences in data_layout "
                              f"{cfg.data_layout}, the model's; --data_layout to change it) or --data_path")
        source, what = (input_file_windows(cfg, input_file), input_file) if input_file \
            else evaluation_windows(cfg, trained)
        config_for_data(cfg, source, model)
        if cfg.num_sequences and input_file:
            source = WindowSubset(source, np.arange(min(cfg.num_sequences, len(source))))
        scored = "no targets: forecasts after the last frame" if getattr(source, "output_frames", None) is None \
            else "windows scored against their targets"
        return source, f"{what} ({count_text(len(source))}, data_layout {cfg.data_layout}; {scored})"
    if given == "--input":
        inputs = normalise_user_array(load_user_array(input_file), input_file, cfg.input_frames, cfg.image_size)
        inputs = inputs[:cfg.num_sequences] if cfg.num_sequences else inputs  # (N, T_in, 1, H, W)
        return [(sequence, None) for sequence in inputs], f"{input_file} ({count_text(len(inputs))})"
    if given == "--dataset" and cfg.dataset == "synthetic":
        count = cfg.num_sequences or SYNTHETIC_PREDICTIONS
        source = generated_test_source(cfg, load_digits(cfg, "val"), count)  # eval.py's set
        return source, f"{count_text(count)} generated from synthetic digits (test_seed {cfg.test_seed})"
    if given is not None:
        path = resolve_test_file(cfg.data_path)
        source = open_test_file(path, cfg.num_sequences, cfg.input_frames, cfg.output_frames, cfg.image_size)
        return source, f"{path} (first {count_text(len(source))})"
    raise ConfigError("no input given: pass --input FILE.npy ((N, 10, 64, 64) or (10, 64, 64)), "
                      "--data_path DIR_OR_mnist_test_seq.npy, or --dataset synthetic")


def units_of(cfg, source):
    """(to_units, description): maps [0, 1] frames to the units thresholds are given in."""
    return units_of_normalization(getattr(source, "normalization", None) if cfg.dataset == "sequences" else None)


def units_of_normalization(n):
    """(to_units, description) of a src.data.sequences.Normalization (None: pixel values in [0, 1])."""
    if n is None:
        return (lambda frames: frames), "pixel values in [0, 1]"
    return n.denormalize, (f"the data's units: [0, 1] mapped back by the training normalisation ({n.scale}, "
                           f"0 -> {n.data_min:g}, 1 -> {n.data_max:g})")


def baseline_predictor(kind, output_frames, channels=()):
    """numpy (B, T_in, C, H, W) -> (B, T_out, C_out, H, W) from a reference rule, of the ``channels``
    (target_channels; empty: all)."""
    if kind == "pysteps":
        pysteps_methods()  # a missing optional package is one error line now, before any sequence is read
    return lambda inputs: predict_baseline(kind, inputs, output_frames, channels)


def checkpoint_predictor(cfg, batch_size=0, any_frame=False):
    """The checkpoint's network, compiled once for batches of ``batch_size`` (0: ``eval_batch_size``) of the
    frames of ``cfg``; ``any_frame``: they may be larger or smaller than the checkpoint's (the deployment frame
    of a model exported from it)."""
    init_device(cfg)
    net, _ = load_network_from_checkpoint(cfg.ckpt_file, cfg, any_frame)  # in inference mode (set_train(False))
    forward = compiled_forward(net, cfg.mode)
    return BatchPredictor.from_network(forward, cfg, batch_size or cfg.eval_batch_size, cfg.ckpt_file)


@dataclass(frozen=True)
class ModelUnderTest:
    """What eval.py and eval_onnx.py score: ``predict`` maps (B, T_in, C, H, W) inputs to (B, T_out, C, H, W)."""

    predict: Callable
    name: str  # a file path or baseline:<kind>, named in the first and the last console line
    runs_on: str  # "mode graph", "mode numpy", "engine onnxruntime"
    compiles: bool = False  # the first batch includes graph compilation
    exported: Any = None  # the BatchPredictor of an exported file (metrics.json: model_file, engine)


def model_under_test(cfg):
    """The checkpoint's network, or the baseline ``--baseline`` names (the checkpoint is then not used)."""
    if cfg.baseline != "none":
        if cfg.ckpt_file:
            print(f"note: --baseline {cfg.baseline} given, --ckpt_file {cfg.ckpt_file} is not used", flush=True)
        return ModelUnderTest(baseline_predictor(cfg.baseline, forecast_frames(cfg), cfg.target_channels),
                              f"baseline:{cfg.baseline}", "mode numpy")
    predictor = for_lead_frames(checkpoint_predictor(cfg), forecast_frames(cfg))  # rolled out past output_frames
    return ModelUnderTest(predictor, os.path.abspath(cfg.ckpt_file), f"mode {cfg.mode}",
                          compiles=cfg.mode == "graph")


def exported_model(predictor, cfg):
    """An exported file's BatchPredictor (eval_onnx.py) as the model under test, rolled out to ``lead_frames``."""
    predictor = for_lead_frames(predictor, forecast_frames(cfg))
    return ModelUnderTest(predictor, os.path.abspath(predictor.name), f"engine {predictor.engine}",
                          exported=predictor)


def rollout_note(cfg, model_name="the model"):
    """One line on a forecast past the trained horizon, or "" when ``lead_frames`` is within it."""
    lead = forecast_frames(cfg)
    if lead <= cfg.output_frames:
        return ""
    chunks = -(-lead // cfg.output_frames)
    return (f"forecast: {lead} lead frames, past the {cfg.output_frames} {model_name} was trained for: {chunks} "
            f"forwards, each from the last {cfg.input_frames} observed + predicted frames (state not carried over)")


# ---------------------------------------------------------------- the evaluation loop

def evaluate(cfg, predict_fn, source, on_batch=None, progress=True):
    """Run ``predict_fn`` (numpy (B, T_in, C, H, W) in [0, 1] -> (B, T_out, C, H, W), numpy or ``.asnumpy()``)
    on ``source[i] -> (inputs, targets)`` in batches of ``cfg.eval_batch_size``, scored where targets are known;
    ``on_batch(start, inputs, targets, pred)`` sees every batch (targets as read: NaN where there is no data, with
    ``nodata``). Returns StreamingMetrics.result() (+ ``no_data`` with ``nodata``) + ``timing``."""
    total = len(source)
    if total == 0:
        raise ConfigError("nothing to evaluate: the data source holds no sequences")
    metrics = StreamingMetrics()
    log = Progress(total, "eval", unit="sequence", plain_lines=True) if progress else None
    t0 = time.perf_counter()
    first_batch_s = predict_s = 0.0
    for start, inputs, targets in iterate_batches(source, cfg.eval_batch_size):
        t_pred = time.perf_counter()
        pred = predict_fn(inputs)
        pred = np.asarray(pred.asnumpy() if hasattr(pred, "asnumpy") else pred)  # (B, T_out, C, H, W)
        predict_s += time.perf_counter() - t_pred
        if start == 0:
            first_batch_s = time.perf_counter() - t0  # includes graph compilation
        if targets is not None:
            metrics.update(pred, *scored_targets(cfg, targets))
        if on_batch is not None:
            on_batch(start, inputs, targets, pred)
        if log is not None:
            done, elapsed = start + len(inputs), time.perf_counter() - log.start
            log.update(done, f"{done / elapsed if elapsed > 0 else 0.0:.1f} seq/s")
    if log is not None:
        log.clear()
    result = metrics.result() if metrics.num_sequences else {"num_sequences": 0}
    total_s = time.perf_counter() - t0
    result["timing"] = {"total_s": round(total_s, 3), "predict_s": round(predict_s, 3),
                        "first_batch_s": round(first_batch_s, 3),
                        "sequences_per_s": round(total / total_s, 3) if total_s > 0 else None}
    return result


def scored_targets(cfg, targets):
    """(targets, valid mask) the metrics take: with ``nodata``, NaN (no data) set to the background 0 and a bool
    mask of the pixels with data; without it the targets and None (today's metrics, NaN refused)."""
    return split_no_data(targets) if getattr(cfg, "nodata", None) else (targets, None)


MAIN = "model"  # key of the evaluated predictor's skill scores in BatchExtras.skills


class BatchExtras:
    """Per-batch extras of an eval run: the baselines' metrics; skill scores in the data's units (``to_units``),
    their Fractions Skill Score at ``fss_scales`` (pixels; empty: none) and HKO-7's balanced errors (``balance``:
    src.metrics.balance_of) of model and baselines; the pictures. The baselines predict the ``target_channels``
    (indices into the inputs' channels; empty: all), the channels the targets hold."""

    def __init__(self, thresholds, output_frames, references=(), to_units=None, balance=None, pictures=None,
                 fss_scales=(), no_data=False, target_channels=()):
        self.output_frames, self.target_channels = output_frames, tuple(target_channels)
        self.no_data = no_data  # targets hold NaN where there is no data: scored on the pixels with data
        self.references = {name: StreamingMetrics() for name in references}
        self.to_units = to_units or (lambda frames: frames)
        names = (MAIN,) + tuple(references)
        self.skills = {name: SkillScores(thresholds) for name in names} if thresholds else {}
        self.balanced = {name: BalancedErrors(*balance) for name in names} if self.skills and balance else {}
        self.fss = {name: FractionsSkillScore(thresholds, fss_scales) for name in names} \
            if self.skills and fss_scales else {}
        self.pictures = pictures

    def _score_skill(self, name, pred, targets, truth, valid):
        if self.skills:
            forecast = self.to_units(np.clip(pred, 0.0, 1.0))  # (B, T_out, C, H, W) in the data's units
            self.skills[name].update(forecast, truth, valid)
            if self.fss:
                self.fss[name].update(forecast, truth, valid)
        if self.balanced:
            self.balanced[name].update(pred, targets, truth, valid)

    def __call__(self, start, inputs, targets, pred):
        if self.pictures is not None:  # the targets as read: no-data pixels drawn as such
            self.pictures(start, inputs, targets, pred)
        targets, valid = split_no_data(targets) if self.no_data else (targets, None)  # valid: (B, T_out, C, H, W)
        truth = self.to_units(targets) if self.skills else None  # (B, T_out, C, H, W) in the data's units
        self._score_skill(MAIN, pred, targets, truth, valid)
        for name, metrics in self.references.items():
            reference = predict_baseline(name, inputs, self.output_frames,
                                         self.target_channels)  # (B, T_out, C_out, H, W)
            metrics.update(reference, targets, valid)
            self._score_skill(name, reference, targets, truth, valid)

    def skill_results(self):
        """{name: SkillScores.result() (+ "balanced": BalancedErrors.result(), "fss": FractionsSkillScore.result())}
        ({} without thresholds)."""
        results = {name: scores.result() for name, scores in self.skills.items()}
        for name, errors in self.balanced.items():
            results[name]["balanced"] = errors.result()
        for name, fss in self.fss.items():
            results[name]["fss"] = fss.result()
        return results


# ---------------------------------------------------------------- outputs

def picture_colours(cfg, to_units):
    """The radar colour scale (thresholds marked) for single-channel dBZ data (``to_units``: [0, 1] -> dBZ),
    else None: grey, one row group per channel."""
    return radar_scale(to_units, cfg.thresholds) if is_dbz_data(cfg) and output_frame_shape(cfg)[0] == 1 else None


class SequencePictures:
    """``vis_dir``/seq_XXXX.png (strip) and, with ground truth, .gif of the first ``count`` sequences; the inputs
    drawn are their ``channels`` (target_channels; empty: all), the channels predicted."""

    def __init__(self, vis_dir, count, colours=None, channels=()):
        self.vis_dir, self.count, self.colours, self.channels = vis_dir, count, colours, tuple(channels)
        self.written = []

    def __call__(self, start, inputs, targets, pred):
        inputs = target_frames(inputs, self.channels)  # (B, T_in, C_out, H, W)
        for b in range(max(0, min(len(pred), self.count - start))):
            stem = os.path.join(self.vis_dir, f"seq_{start + b:04d}")
            target = None if targets is None else targets[b]
            self.written.append(save_sequence_strip(stem + ".png", inputs[b], target, pred[b], 2, self.colours))
            if target is not None:
                self.written.append(save_comparison_gif(stem + ".gif", target, pred[b], inputs=inputs[b],
                                                        colours=self.colours))


class PredictionsFile:
    """predictions.npy as an on_batch writer, through a memory map of the temporary file ``tmp``: own
    sequences in their data_layout and units, else (N, T_out, H, W) in [0, 1]."""

    def __init__(self, tmp, count, cfg, output_shape, normalization=None):
        self.normalization = normalization if cfg.dataset == "sequences" else None
        self.layout = cfg.data_layout if self.normalization is not None else "NTHW"
        self.shape = layout_shape(self.layout, count, *output_shape)  # output_shape: (T_out, C, H, W)
        self.out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=self.shape)

    def __call__(self, start, inputs, targets, pred):
        block = to_layout(pred if self.normalization is None else self.normalization.denormalize(pred), self.layout)
        rows = slice(start, start + len(pred))
        self.out[(slice(None), rows) if self.layout == "TNHW" else rows] = block  # TNHW: (T_out, b, H, W)

    def close(self):
        self.out.flush()
        self.out = None

    def describe(self, path):
        shape, n = f"({', '.join(map(str, self.shape))})", self.normalization
        if n is None:
            return f"{path} shape {shape} float32 in [0, 1]"
        return (f"{path} shape {shape} float32 (data_layout {self.layout}, in the data's units: [0, 1] mapped "
                f"back to [{n.data_min:g}, {n.data_max:g}])")
