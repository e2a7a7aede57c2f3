"""Scheduled sampling masks (``cfg.sampling``), pure functions of (seed, global step) computed on the host.

The mask has one entry per (sequence, input step t = 1 .. T-2) of a T = input_frames + output_frames frame
sequence: 1 feeds the true frame t to the network, 0 its own prediction of frame t (``src/models/stacked.py``).
It is drawn for the GLOBAL batch and each data-parallel rank takes its rows, so the draws do not depend on the
number of ranks, and a resumed run draws what an uninterrupted one would.

- ``none``: the inference mask (true observed frames, then predictions), every step.
- ``scheduled`` (Bengio et al. 2015; OpenSTL's ConvLSTM, ``openstl/utils/predrnn_utils.py``): observed frames
  true; each predicted step true with probability ``eta = 1 - (s + 1) / S`` (0 from step S on), S =
  ``sampling_stop`` x total steps (OpenSTL: 50,000 of 125,000).
- ``reverse`` (PredRNN-V2, Wang et al. 2022, its ``reserve_schedule_sampling_exp``): with s1, s2, alpha the
  ``reverse_sampling_*`` fractions of total steps, observed frames 1 .. T_in-1 are true with probability 0.5
  before s1, ``1 - 0.5 exp(-(s - s1) / alpha)`` until s2, then 1; predicted frames with 0.5 before s1,
  ``0.5 - 0.5 (s - s1) / (s2 - s1)`` until s2, then 0.
"""
import math

import numpy as np

MASK_STREAM = 0x5A3D  # a fixed third word of the generator's seed: mask draws never share the data's stream


def total_steps(cfg):
    return cfg.epochs * cfg.steps_per_epoch


def scheduled_probability(step, stop_step):
    """OpenSTL's teacher-forcing probability at 0-based ``step``."""
    return max(0.0, 1.0 - (step + 1) / stop_step)


def reverse_probabilities(step, start_step, stop_step, alpha_steps):
    """(observed, predicted) probabilities of a true frame at ``step`` (PredRNN-V2)."""
    if step < start_step:
        return 0.5, 0.5
    if step < stop_step:
        observed = 1.0 - 0.5 * math.exp(-(step - start_step) / alpha_steps)
        return observed, 0.5 - 0.5 * (step - start_step) / (stop_step - start_step)
    return 1.0, 0.0


def true_frame_probabilities(cfg, step):
    """(observed, predicted) probability of feeding a true frame at global ``step`` under ``cfg.sampling``."""
    n = total_steps(cfg)
    if cfg.sampling == "none":
        return 1.0, 0.0
    if cfg.sampling == "scheduled":
        return 1.0, scheduled_probability(step, cfg.sampling_stop * n)
    if cfg.sampling == "reverse":
        return reverse_probabilities(step, cfg.reverse_sampling_start * n, cfg.reverse_sampling_stop * n,
                                     cfg.reverse_sampling_alpha * n)
    raise ValueError(f"unknown sampling {cfg.sampling!r}")


def inference_mask(batch, input_frames, output_frames):
    """(batch, T-2) float32: ones on the observed steps 1 .. T_in-1, zeros on the predicted ones."""
    mask = np.zeros((batch, input_frames + output_frames - 2), np.float32)
    mask[:, :input_frames - 1] = 1.0
    return mask


def global_mask(cfg, step, global_batch):
    """The mask of global ``step`` for all ``global_batch`` sequences, (global_batch, T-2) float32."""
    observed, predicted = true_frame_probabilities(cfg, step)
    t_in, t_out = cfg.input_frames, cfg.output_frames
    if cfg.sampling == "none":
        return inference_mask(global_batch, t_in, t_out)
    draws = np.random.default_rng([cfg.seed, step, MASK_STREAM]).random((global_batch, t_in + t_out - 2))
    probability = np.concatenate([np.full(t_in - 1, observed), np.full(t_out - 1, predicted)])  # (T-2,)
    return (draws < probability).astype(np.float32)


def rank_mask(cfg, step, rank, group_size):
    """This rank's rows of the global mask: (batch_size, T-2) float32."""
    rows = slice(rank * cfg.batch_size, (rank + 1) * cfg.batch_size)
    return global_mask(cfg, step, cfg.batch_size * group_size)[rows]
