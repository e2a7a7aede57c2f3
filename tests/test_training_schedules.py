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


def _onecycle(total, lr=0.1, pct=0.3):
    return LRSchedule(_cfg(lr_schedule="onecycle", lr=lr, min_lr=0.0, epochs=1, steps_per_epoch=total,
                           onecycle_pct_start=pct))


def test_onecycle_anchor_points_are_pytorchs():
    """PyTorch OneCycleLR defaults: start lr/25, lr at step pct * N - 1, end lr/25/1e4 at step N - 1, and
    halfway along each cosine phase the mean of its ends."""
    s = _onecycle(110)  # rise ends at step 32, the fall spans steps 32 .. 109
    assert s.lr_at(0, 0) == pytest.approx(0.1 / 25)
    assert s.lr_at(0, 16) == pytest.approx((0.1 / 25 + 0.1) / 2)
    assert s.lr_at(0, 32) == pytest.approx(0.1)
    assert s.lr_at(0, 109) == pytest.approx(0.1 / 25 / 1e4)
    values = [s.lr_at(0, k) for k in range(110)]
    assert all(a < b for a, b in zip(values[:32], values[1:33]))
    assert all(a > b for a, b in zip(values[32:], values[33:]))
    fall_mid = 32 + 77 / 2  # between steps 70 and 71: their mean is close to the phase's mean
    assert (s.lr_at(0, 70) + s.lr_at(0, 71)) / 2 == pytest.approx((0.1 + 0.1 / 25 / 1e4) / 2, rel=2e-3)
    assert fall_mid == 70.5


def test_onecycle_equals_torch_onecyclelr_at_every_step():
    torch = pytest.importorskip("torch")
    for total, pct in ((2_000, 0.3), (37, 0.25), (3, 0.3)):
        param = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.Adam([param], lr=5e-4)
        ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=5e-4, total_steps=total, pct_start=pct,
                                                  final_div_factor=1e4)
        s = _onecycle(total, lr=5e-4, pct=pct)
        for step in range(total):
            assert s.lr_at(0, step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15), (total, step)
            opt.step()
            ref.step()
