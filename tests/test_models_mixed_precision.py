"""Mixed precision (src/models/mixed_precision.py) through the real training step, in graph mode.

Every amp level x loss scaling runs a few compiled training steps on a tiny paper network, and every level
and every loss scaling on a tiny zoo network, on the CPU backend (float16 Conv2d/MatMul kernels exist there;
slow, hence tiny).
"""
import numpy as np
import pytest

from src.config import load_config

LEVELS = ("O1", "O2", "O3")
SCALES = ("none", "fixed", "dynamic")


def _network(arch):
    """Tiny networks of both architectures on 16x16 frames (2 observed, 2 predicted)."""
    from src.models.encoder_forecaster import PaperEncoderForecaster, ZooEncoderForecaster

    if arch == "paper":
        return PaperEncoderForecaster(2, 2, 16, hidden_channels=(8, 8), kernel_size=3, patch_size=4, group_norm=True,
                                      peephole=True, output_bias=-1.0)
    return ZooEncoderForecaster(2, 2, 16, output_bias=-1.0, channels=(4, 8, 8))  # GroupNorm in every cell


def _batch(seed=0):
    import mindspore as ms

    frames = (np.random.default_rng(seed).random((2, 4, 1, 16, 16)) > 0.7).astype(np.float32)  # (B, T, C, H, W)
    return ms.Tensor(frames[:, :2]), ms.Tensor(frames[:, 2:])


def _cfg(**kw):
    base = dict(mode="graph", loss="bce", ssim_weight=0.1, grad_clip=1.0, optimizer="adam", lr=0.01)
    base.update(kw)
    return load_config([], **base)


def _weights(net):
    return {p.name: p.asnumpy().copy() for p in net.get_parameters()}


def _trainable(arch, level, scale, scale_value=1024.0, seed=0):
    import mindspore as ms
    from src.models.mixed_precision import training_forward
    from src.training.step import build_optimizer, build_train_step, make_loss_scaler

    ms.set_seed(seed)
    net = _network(arch)
    cfg = _cfg(amp_level=level, loss_scale=scale, loss_scale_value=scale_value)
    forward = training_forward(net, level)
    optimizer = build_optimizer(cfg, net)
    scaler = make_loss_scaler(scale, scale_value)
    return net, forward, scaler, build_train_step(cfg, forward, optimizer, scaler)


# the paper network through every (level, scale); the slower zoo network through every level and every scale
# once (the loss scaler wraps loss and gradients the same way whatever the network)
TRAINED_COMBINATIONS = [("paper", level, scale) for level in LEVELS for scale in SCALES] + \
    [("zoo", level, "dynamic") for level in LEVELS] + [("zoo", "O2", scale) for scale in SCALES if scale != "dynamic"]


@pytest.mark.parametrize("arch, level, scale", TRAINED_COMBINATIONS)
def test_every_level_and_loss_scale_trains_in_graph_mode(arch, level, scale):
    """Three compiled steps: finite float32 loss, every step applied, weights stay float32 and move."""
    import mindspore as ms

    net, _, _, step = _trainable(arch, level, scale)
    x, y = _batch()
    before = _weights(net)
    for _ in range(3):
        loss, finite = step(x, y, ms.Tensor(0.01, ms.float32))
        assert loss.dtype == ms.float32 and np.isfinite(float(loss.asnumpy()))
        assert bool(finite.asnumpy())
    after = _weights(net)
    assert all(after[k].dtype == np.float32 for k in after)
    assert sum(not np.array_equal(before[k], after[k]) for k in before) == len(before)


@pytest.mark.parametrize("arch", ["paper", "zoo"])
@pytest.mark.parametrize("level", LEVELS)
def test_levels_really_compute_in_float16(arch, level):
    """Same weights, same input: the logits of each level differ from float32 by float16 rounding
    (a level that silently ran float32 would match exactly), and stay close to them."""
    import mindspore as ms
    from src.models.mixed_precision import training_forward

    x, _ = _batch()
    ms.set_seed(0)
    reference = training_forward(_network(arch), "O0")(x).asnumpy()
    ms.set_seed(0)
    mixed = training_forward(_network(arch), level)(x)
    assert mixed.dtype == ms.float32
    difference = np.abs(mixed.asnumpy() - reference).max()
    assert 0 < difference < 0.05, difference


def test_o2_keeps_group_norm_in_float32_and_o3_does_not():
    import mindspore as ms
    from mindspore import nn
    from src.models.mixed_precision import training_forward

    for level, expect_fp16 in (("O2", False), ("O3", True)):
        net = _network("paper")
        training_forward(net, level)
        norms = [cell for _, cell in net.cells_and_names() if isinstance(cell, nn.GroupNorm)]
        assert norms and all(bool(cell.get_flags().get("fp16", False)) == expect_fp16 for cell in norms), level
        assert ms.float32 == norms[0].gamma.dtype  # parameters are never cast


def test_o1_writes_no_rewritten_network_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from src.models.mixed_precision import training_forward

    training_forward(_network("zoo"), "O1")
    assert list(tmp_path.iterdir()) == []


def test_dynamic_scaler_lowers_its_scale_and_skips_the_step_on_overflow():
    """A scale of 2^24 overflows float16 gradients: the step is skipped (weights unchanged) and
    the scale halves; once the scale is low enough, steps apply and the counter counts them."""
    import mindspore as ms

    net, _, scaler, step = _trainable("paper", "O2", "dynamic", scale_value=2.0 ** 24)
    x, y = _batch()
    before = _weights(net)
    _, finite = step(x, y, ms.Tensor(0.01, ms.float32))
    assert not bool(finite.asnumpy())
    assert float(scaler.scale_value.asnumpy()) == 2.0 ** 23
    assert int(scaler.counter.asnumpy()) == 0
    after = _weights(net)
    assert all(np.array_equal(before[k], after[k]) for k in before)
    for _ in range(30):
        _, finite = step(x, y, ms.Tensor(0.01, ms.float32))
        if bool(finite.asnumpy()):
            break
    assert bool(finite.asnumpy()), "the scale never came down far enough"
    assert int(scaler.counter.asnumpy()) == 1
    assert any(not np.array_equal(before[k], v) for k, v in _weights(net).items())


def test_fixed_scale_overflow_skips_the_step_and_keeps_the_scale():
    import mindspore as ms

    net, _, scaler, step = _trainable("paper", "O3", "fixed", scale_value=2.0 ** 24)
    x, y = _batch()
    before = _weights(net)
    _, finite = step(x, y, ms.Tensor(0.01, ms.float32))
    assert not bool(finite.asnumpy())
    assert float(scaler.scale_value.asnumpy()) == 2.0 ** 24
    assert all(np.array_equal(before[k], v) for k, v in _weights(net).items())


def test_loss_scaler_state_round_trips():
    from src.training.step import load_loss_scaler_state, loss_scaler_state, make_loss_scaler
    import mindspore as ms

    scaler = make_loss_scaler("dynamic", 1024.0)
    scaler.scale_value.set_data(ms.Tensor(256.0, ms.float32))
    scaler.counter.set_data(ms.Tensor(17, scaler.counter.dtype))
    state = loss_scaler_state(scaler)
    assert state == {"scale": 256.0, "counter": 17}
    fresh = make_loss_scaler("dynamic", 1024.0)
    load_loss_scaler_state(fresh, state)
    assert loss_scaler_state(fresh) == state
    assert loss_scaler_state(make_loss_scaler("fixed", 8.0)) == {"scale": 8.0}
    assert loss_scaler_state(make_loss_scaler("none", 8.0)) is None


def test_cpu_ignores_amp_unless_asked(capsys):
    from src.device import effective_amp_level, effective_loss_scale

    cfg = load_config([], device_target="CPU", amp_level="O2", loss_scale="dynamic")
    assert effective_amp_level(cfg) == "O0" and effective_loss_scale(cfg) == "none"
    assert "--amp_on_cpu true" in capsys.readouterr().err
    cfg = cfg.replace(amp_on_cpu=True)
    assert effective_amp_level(cfg) == "O2" and effective_loss_scale(cfg) == "dynamic"
