"""Scheduled sampling masks (src/training/sampling.py): OpenSTL's and PredRNN-V2's probabilities, pure
functions of (seed, step), one global mask sliced by rank."""
import math

import numpy as np
import pytest

from src.config import load_config
from src.errors import ConfigError
from src.training import sampling


def cfg(**kw):
    base = dict(arch="stacked", input_frames=10, output_frames=10, epochs=5, steps_per_epoch=25_000, batch_size=16,
                sampling="scheduled")
    base.update(kw)
    return load_config([], **base)


def test_scheduled_probability_is_openstls_formula():
    """OpenSTL, 125,000 steps, sampling_stop_iter 50,000: eta = 1 - (s + 1) / 50,000, then 0."""
    c = cfg()
    assert sampling.total_steps(c) == 125_000
    for step in (0, 1, 9_999, 24_999, 49_998, 49_999, 50_000, 124_999):
        expected = 1.0 - (step + 1) / 50_000 if step < 50_000 else 0.0
        assert sampling.true_frame_probabilities(c, step) == (1.0, pytest.approx(max(0.0, expected), abs=1e-12))


def test_reverse_probabilities_are_predrnn_v2s():
    """PredRNN-V2 at 125,000 steps: r_sampling_step_1 25,000, r_sampling_step_2 50,000, r_exp_alpha 5,000."""
    c = cfg(sampling="reverse")
    assert sampling.true_frame_probabilities(c, 0) == (0.5, 0.5)
    assert sampling.true_frame_probabilities(c, 24_999) == (0.5, 0.5)
    observed, predicted = sampling.true_frame_probabilities(c, 30_000)
    assert observed == pytest.approx(1.0 - 0.5 * math.exp(-5_000 / 5_000))
    assert predicted == pytest.approx(0.5 - 0.5 * 5_000 / 25_000)
    assert sampling.true_frame_probabilities(c, 50_000) == (1.0, 0.0)


def test_mask_layout_and_empirical_rate():
    c = cfg()
    mask = sampling.global_mask(c, 25_000, 4_000)  # eta = 1 - 25,001 / 50,000 ~ 0.5
    assert mask.shape == (4_000, 18) and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert (mask[:, :9] == 1.0).all()  # observed frames 1..9 always true
    assert mean_close(mask[:, 9:].mean(), 1 - 25_001 / 50_000, 0.01)
    assert (sampling.global_mask(c, 50_000, 8)[:, 9:] == 0.0).all()


def mean_close(value, expected, tolerance):
    return abs(value - expected) < tolerance


def test_none_is_the_inference_mask_every_step():
    c = cfg(sampling="none", arch="paper")
    expected = sampling.inference_mask(3, 10, 10)
    for step in (0, 1000):
        np.testing.assert_array_equal(sampling.global_mask(c, step, 3), expected)
    assert expected[:, :9].min() == 1.0 and expected[:, 9:].max() == 0.0


def test_pure_function_of_seed_and_step():
    c = cfg(sampling_stop=1.0)
    half = 62_499  # eta = 0.5
    a, b = sampling.global_mask(c, half, 16), sampling.global_mask(c, half, 16)
    np.testing.assert_array_equal(a, b)
    assert 0.2 < a[:, 9:].mean() < 0.8
    assert not np.array_equal(a, sampling.global_mask(c, half + 1, 16))
    assert not np.array_equal(a, sampling.global_mask(cfg(sampling_stop=1.0, seed=2), half, 16))


def test_two_ranks_slice_the_one_process_mask():
    """2 ranks of batch 4 use the rows a single process of batch 8 uses at the same step."""
    single = sampling.rank_mask(cfg(batch_size=8, sampling_stop=1.0), 62_499, 0, 1)
    assert 0.2 < single[:, 9:].mean() < 0.8
    ranks = [sampling.rank_mask(cfg(batch_size=4, sampling_stop=1.0), 62_499, r, 2) for r in range(2)]
    np.testing.assert_array_equal(np.concatenate(ranks), single)


@pytest.mark.parametrize("changes,match", [
    (dict(arch="paper", sampling="scheduled"), "sampling"),
    (dict(arch="zoo", loss_frames="all", sampling="none"), "loss_frames"),
    (dict(sampling="reverse", reverse_sampling_start=0.5, reverse_sampling_stop=0.4), "reverse_sampling_start"),
    (dict(sampling_stop=0.0), "sampling_stop"),
    (dict(output_activation="linear", loss="bce"), "bce"),
    (dict(arch="zoo", output_activation="linear", sampling="none", loss="mse"), "output_activation"),
    (dict(lr_schedule="onecycle", warmup_epochs=1), "warmup_epochs"),
    (dict(forecaster_input="prediction"), "forecaster_input"),
])
def test_keys_the_procedure_would_ignore_are_refused(changes, match):
    with pytest.raises(ConfigError, match=match):
        cfg(**changes)
