"""Both networks on C-channel, non-square frames: shapes, channels kept apart where they should be,
patches of C channels, parameter and MAC counts of the FLOP counter."""
import numpy as np
import pytest

import mindspore as ms

from src.config import load_config
from src.models import flops
from src.models.encoder_forecaster import (PaperEncoderForecaster, ZooEncoderForecaster, depth_to_space,
                                           space_to_depth)
from src.models.network import build_network

pytestmark = pytest.mark.usefixtures("pynative_mode")


def frames_cfg(arch, channels=3, height=16, width=24, **overrides):
    values = dict(dataset="sequences", channels=channels, frame_height=height, frame_width=width, arch=arch,
                  input_frames=3, output_frames=4, hidden_channels=[8, 4], kernel_size=3, patch_size=4)
    values.update(overrides)
    return load_config([], **values)


@pytest.mark.parametrize("arch,extra", [("paper", {}), ("paper", dict(forecaster_input="prediction", peephole=True)),
                                        ("paper", dict(patch_size=2, group_norm=True)), ("zoo", dict(peephole=True))])
def test_c_channels_in_c_channels_out_on_non_square_frames(arch, extra):
    ms.set_seed(0)
    cfg = frames_cfg(arch, **extra)
    net = build_network(cfg)
    x = np.random.default_rng(0).random((2, 3, 3, 16, 24)).astype(np.float32)  # (B, T_in, C, H, W)
    y = net(ms.Tensor(x)).asnumpy()
    assert y.shape == (2, 4, 3, 16, 24)  # output longer than the input, every channel predicted
    assert np.isfinite(y).all() and (y >= 0).all() and (y <= 1).all()
    assert flops.count_parameters(net) == flops.network_cost(cfg)["params"]


def test_space_to_depth_keeps_channels_apart_and_inverts():
    x = np.arange(2 * 3 * 8 * 12, dtype=np.float32).reshape(2, 3, 8, 12)  # (N, C, H, W)
    patches = space_to_depth(ms.Tensor(x), 4).asnumpy()
    assert patches.shape == (2, 48, 2, 3)
    # channel index c*16 + dy*4 + dx holds pixel (4*i + dy, 4*j + dx) of channel c
    for c, dy, dx, i, j in [(0, 0, 0, 0, 0), (1, 2, 3, 1, 2), (2, 3, 1, 0, 1)]:
        assert patches[1, c * 16 + dy * 4 + dx, i, j] == x[1, c, 4 * i + dy, 4 * j + dx]
    np.testing.assert_array_equal(depth_to_space(ms.Tensor(patches), 4).asnumpy(), x)


@pytest.mark.parametrize("arch", ["paper", "zoo"])
def test_first_and_last_layers_follow_the_channel_count(arch):
    cfg = frames_cfg(arch)
    net = build_network(cfg)
    shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}
    if arch == "zoo":
        assert shapes["enc_conv1.weight"][1] == 3 and shapes["dec_out.weight"][0] == 3
    else:
        assert shapes["encoder.0.input_conv.weight"][1] == 3 * 16 and shapes["output_conv.weight"][0] == 3 * 16


def test_one_channel_square_frames_build_the_same_network_as_before():
    """frame_channels=1 and frame_size=(S, S) are the defaults: same parameters, same outputs."""
    x = ms.Tensor(np.random.default_rng(1).random((1, 3, 1, 16, 16)).astype(np.float32))
    for make in (lambda **kw: PaperEncoderForecaster(3, 2, hidden_channels=(8,), kernel_size=3, **kw),
                 lambda **kw: ZooEncoderForecaster(3, 2, channels=(4, 8, 8), **kw)):
        ms.set_seed(3)
        old = make(image_size=16)
        ms.set_seed(3)
        new = make(frame_channels=1, frame_size=(16, 16))
        assert [(p.name, p.shape) for p in old.get_parameters()] == [(p.name, p.shape) for p in new.get_parameters()]
        np.testing.assert_array_equal(old(x).asnumpy(), new(x).asnumpy())


@pytest.mark.parametrize("arch", ["paper", "zoo"])
def test_counted_macs_equal_the_convolutions_on_c_channel_non_square_frames(arch, monkeypatch):
    from tests.test_models_flops import _ConvMacCounter

    cfg = frames_cfg(arch, channels=2, height=16, width=32)
    net = build_network(cfg)
    counter = _ConvMacCounter(monkeypatch)
    net(ms.Tensor(np.zeros((1, 3, 2, 16, 32), np.float32)))
    assert counter.macs and sum(counter.macs) == flops.network_cost(cfg)["forward_macs"]
    table = flops.format_cost_table(cfg)
    assert "2x16x32 (C x H x W)" in table and ("16x32" in table)


def test_sequences_config_without_a_frame_shape_cannot_build_a_network():
    from src.errors import ConfigError

    with pytest.raises(ConfigError, match="not known yet"):
        build_network(load_config([], dataset="sequences"))


@pytest.mark.parametrize("arch,targets", [("paper", [0]), ("paper", [0, 2]), ("zoo", [1])])
def test_target_channels_set_the_output_layer_and_the_counted_cost(arch, targets, monkeypatch):
    """3 channels in, the target_channels out: the output convolution's width, the output shape, the parameter
    and MAC counts of the FLOP counter."""
    from tests.test_models_flops import _ConvMacCounter

    ms.set_seed(0)
    cfg = frames_cfg(arch, target_channels=targets)
    net = build_network(cfg)
    shapes = {p.name: tuple(p.shape) for p in net.get_parameters()}
    out_weight = shapes["dec_out.weight" if arch == "zoo" else "output_conv.weight"][0]
    assert out_weight == len(targets) * (1 if arch == "zoo" else 16)
    counter = _ConvMacCounter(monkeypatch)
    y = net(ms.Tensor(np.random.default_rng(0).random((1, 3, 3, 16, 24)).astype(np.float32))).asnumpy()
    assert y.shape == (1, 4, len(targets), 16, 24)  # (B, T_out, C_out, H, W)
    assert flops.count_parameters(net) == flops.network_cost(cfg)["params"]
    assert sum(counter.macs) == flops.network_cost(cfg)["forward_macs"]


def test_a_prediction_fed_forecaster_needs_every_channel_out():
    with pytest.raises(ValueError, match="output_channels must be frame_channels"):
        PaperEncoderForecaster(3, 2, hidden_channels=(8,), kernel_size=3, forecaster_input="prediction",
                               frame_channels=3, frame_size=(16, 16), output_channels=1)
