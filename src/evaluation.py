"""The evaluation loop: the data to score, the predictors, and the metrics batch by batch.

``evaluate(cfg, predict_fn, source)`` scores any predictor (a checkpoint network, an exported
model, a baseline) on any random-access source with src/metrics.py; ``BatchExtras`` adds the
reference baselines, the skill scores and the pictures. Used by eval.py's procedure
(src/eval_report.py), eval_onnx.py, postprocess.py (``BatchExtras`` on the Ascend 310 app's
outputs) and validation during training; it imports nothing from training. What is evaluated:
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
  ``--baseline zeros|copy_last|extrapolation`` a reference predictor (no checkpoint, no MindSpore).
"""
import os
import time

import numpy as np

from src.config import BASELINES
from src.errors import ConfigError
from src.progress import Progress

NOWCASTING_BASELINES = ("extrapolation",)  # scored next to a checkpoint of own sequences too


def reference_baselines(dataset):
    """The baselines scored next to a model of ``dataset``: zeros and copy_last always; for own
    sequences (the nowcasting case) also extrapolation, whose optical flow costs about 30 ms per
    64x64 frame pair on CPU (on request elsewhere: ``--baseline extrapolation``)."""
    plain = tuple(b for b in BASELINES if b not in NOWCASTING_BASELINES)
    return plain + (NOWCASTING_BASELINES if dataset == "sequences" else ())


# ---------------------------------------------------------------- what is evaluated

def build_source(cfg):
    """The sequences to evaluate and a description of them for metrics.json."""
    if cfg.dataset == "sequences":
        from src.data.pipeline import evaluation_windows

        source, described = evaluation_windows(cfg)
        return source, {"dataset": "sequences", "data_path": os.path.abspath(cfg.data_path), "description": described}
    if cfg.dataset == "mnist":
        from src.data.archive import unpacked_data_path
        from src.data.sequences import TEST_FILE, TestSequences, resolve_test_file

        path = os.path.abspath(resolve_test_file(unpacked_data_path(cfg, [(TEST_FILE,)])))  # a .zip is unpacked
        source = TestSequences(path, cfg.num_sequences, cfg.input_frames, cfg.output_frames,
                               image_size=cfg.image_size)
        return source, {"dataset": "mnist", "data_path": path, "description": "mnist_test_seq.npy"}
    from src.data.pipeline import generated_test_source, load_digits

    count = cfg.num_sequences or cfg.val_sequences
    if count == 0:
        raise ConfigError("nothing to evaluate: dataset synthetic with val_sequences 0; pass --num_sequences K")
    source = generated_test_source(cfg, load_digits(cfg, "val"), count)
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
    return units_of_normalization(normalization if cfg.dataset == "sequences" else None)


def units_of_normalization(n):
    """(to_units, description) of a src.data.sequences.Normalization (None: pixel values in [0, 1])."""
    if n is None:
        return (lambda frames: frames), "pixel values in [0, 1]"
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
    from src.data.pipeline import iterate_batches

    for start, inputs, targets in iterate_batches(source, cfg.eval_batch_size):
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


MAIN = "model"  # key of the evaluated predictor's skill scores in BatchExtras.skills


class BatchExtras:
    """Per-batch extras of an eval run: the reference baseline scores, the skill scores (in the
    data's units, ``to_units``) of the evaluated predictor and the baselines, HKO-7's balanced
    errors (``balance``: (thresholds, weights) of src.metrics.balance_of, or None) and the
    pictures (a SequencePictures, or None)."""

    def __init__(self, thresholds, output_frames, references=(), to_units=None, balance=None, pictures=None):
        from src.metrics import BalancedErrors, SkillScores, StreamingMetrics

        self.output_frames = output_frames
        self.references = {name: StreamingMetrics() for name in references}
        self.to_units = to_units or (lambda frames: frames)
        names = (MAIN,) + tuple(references)
        self.skills = {name: SkillScores(thresholds) for name in names} if thresholds else {}
        self.balanced = {name: BalancedErrors(*balance) for name in names} if self.skills and balance else {}
        self.pictures = pictures

    @property
    def written(self):
        """The picture files written so far."""
        return self.pictures.written if self.pictures is not None else []

    def _score_skill(self, name, pred, targets, truth):
        if self.skills:
            self.skills[name].update(self.to_units(np.clip(pred, 0.0, 1.0)), truth)
        if self.balanced:
            self.balanced[name].update(pred, targets, truth)

    def __call__(self, start, inputs, targets, pred):
        """inputs (B, T_in, C, H, W), targets and pred (B, T_out, C, H, W), in [0, 1]."""
        from src.baselines import predict_baseline

        truth = self.to_units(targets) if self.skills else None  # (B, T_out, C, H, W) in the data's units
        self._score_skill(MAIN, pred, targets, truth)
        for name, metrics in self.references.items():
            reference = predict_baseline(name, inputs, self.output_frames)  # (B, T_out, C, H, W)
            metrics.update(reference, targets)
            self._score_skill(name, reference, targets, truth)
        if self.pictures is not None:
            self.pictures(start, inputs, targets, pred)

    def skill_results(self):
        """{name: SkillScores.result() (+ "balanced": BalancedErrors.result())} ({} without thresholds)."""
        results = {name: scores.result() for name, scores in self.skills.items()}
        for name, errors in self.balanced.items():
            results[name]["balanced"] = errors.result()
        return results


# ---------------------------------------------------------------- pictures

def picture_colours(cfg, to_units):
    """How frames are drawn: the radar colour scale (src.visualize.radar_scale, thresholds marked) for
    single-channel dBZ data (``src.config.is_dbz_data``; ``to_units`` maps [0, 1] to dBZ), else None
    (grey, one row group per channel)."""
    from src.config import frame_shape, is_dbz_data

    if not is_dbz_data(cfg) or frame_shape(cfg)[0] != 1:
        return None
    from src.visualize import radar_scale

    return radar_scale(to_units, cfg.thresholds)


class SequencePictures:
    """The pictures of the first ``count`` sequences of a run into ``vis_dir`` (save_sequence_pictures)."""

    def __init__(self, vis_dir, count, colours=None):
        self.vis_dir, self.count, self.colours = vis_dir, count, colours
        self.written = []

    def __call__(self, start, inputs, targets, pred):
        """Batch arrays (B, T, C, H, W); targets None without ground truth."""
        for b in range(max(0, min(len(pred), self.count - start))):
            target = None if targets is None else targets[b]
            self.written += save_sequence_pictures(self.vis_dir, start + b, inputs[b], target, pred[b], self.colours)


def save_sequence_pictures(vis_dir, index, inputs, target, pred, colours=None):
    """Strip PNG (input, truth, prediction, |error|; one row group per channel) and truth-vs-prediction
    GIF of one sequence, frames (T, C, H, W); without ground truth (``target`` None) the strip of
    the input and prediction rows only. ``colours``: see ``picture_colours``."""
    from src.visualize import save_comparison_gif, save_sequence_strip

    stem = os.path.join(vis_dir, f"seq_{index:04d}")
    strip = save_sequence_strip(stem + ".png", inputs, target, pred, scale=2, colours=colours)
    if target is None:
        return [strip]
    return [strip, save_comparison_gif(stem + ".gif", target, pred, inputs=inputs, colours=colours)]
