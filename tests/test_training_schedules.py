"""Learning-rate schedules (src/training/schedules.py)."""
import math

import pytest

from src.config import load_config
from src.training.schedules import LRSchedule


def _cfg(**kw):
    base = dict(lr=0.1, min_lr=0.001, epochs=4, steps_per_epoch=10, warmup_epochs=0)
    base.update(kw)
    return load_config([], **base)


def test_constant():
    s = LRSchedule(_cfg(lr_schedule="constant"))
    assert {s.lr_at(e, k) for e in range(4) for k in range(10)} == {0.1}


def test_cosine_starts_at_lr_ends_near_min_and_decreases():
    s = LRSchedule(_cfg(lr_schedule="cosine"))
    values = [s.lr_at(e, k) for e in range(4) for k in range(10)]
    assert values[0] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values, values[1:]))
    half = 0.001 + 0.5 * (0.1 - 0.001) * (1 + math.cos(math.pi * 20 / 40))
    assert s.lr_at(2, 0) == pytest.approx(half)
    assert values[-1] == pytest.approx(0.001 + 0.5 * 0.099 * (1 + math.cos(math.pi * 39 / 40)))


def test_step_decays_every_n_epochs():
    s = LRSchedule(_cfg(lr_schedule="step", lr_step_epochs=2, lr_gamma=0.5))
    assert [s.lr_at(e, 3) for e in range(4)] == pytest.approx([0.1, 0.1, 0.05, 0.05])


def test_plateau_decays_after_patience_and_state_round_trips():
    s = LRSchedule(_cfg(lr_schedule="plateau", lr_patience=2, lr_gamma=0.5))
    for score in (1.0, 0.9, 0.95):
        s.on_validation(score)
    assert s.lr_at(3, 0) == pytest.approx(0.1)
    s.on_validation(0.97)  # second epoch without improvement
    assert s.lr_at(3, 0) == pytest.approx(0.05)
    t = LRSchedule(_cfg(lr_schedule="plateau", lr_patience=2, lr_gamma=0.5))
    t.load_state_dict(s.state_dict())
    assert t.lr_at(3, 0) == s.lr_at(3, 0) and t.best == s.best


def test_warmup_is_linear_then_schedule():
    s = LRSchedule(_cfg(lr_schedule="constant", warmup_epochs=1))
    assert [s.lr_at(0, k) for k in (0, 4, 9)] == pytest.approx([0.01, 0.05, 0.1])
    assert s.lr_at(1, 0) == pytest.approx(0.1)


def test_floor_at_min_lr():
    s = LRSchedule(_cfg(lr_schedule="step", lr_step_epochs=1, lr_gamma=0.01, epochs=4))
    assert s.lr_at(3, 0) == pytest.approx(0.001)
