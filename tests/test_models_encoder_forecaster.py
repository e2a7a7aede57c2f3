"""Encoder-forecaster networks: shapes, parameter layout, graph/eager agreement, training, state flow."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import nn, ops

from src.config import load_config
from src.models.encoder_forecaster import ZooEncoderForecaster, depth_to_space, space_to_depth
from src.models.network import build_network


pytestmark = pytest.mark.usefixtures("pynative_mode")


def tiny_cfg(arch, **overrides):
    values = dict(arch=arch, image_size=32, input_frames=3, output_frames=2, hidden_channels=[8, 4],
                  kernel_size=3, patch_size=4)
    values.update(overrides)
    return load_config([], **values)


def frames(batch, steps, size=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((batch, steps, 1, size, size)).astype(np.float32)


def numpy_out(net, x):
    return net(ms.Tensor(x)).asnumpy()


def small_zoo(t_in=3, t_out=2):
    """The zoo network at 16x16 (the config requires >= 32): full widths, a quarter of the work."""
    return ZooEncoderForecaster(t_in, t_out, image_size=16)


@pytest.mark.parametrize("arch,t_in,t_out", [("paper", 3, 2), ("paper", 1, 4), ("paper", 5, 1), ("zoo", 1, 3),
                                             ("zoo", 4, 1)])
def test_output_shape_and_range(arch, t_in, t_out):
    ms.set_seed(0)
    cfg = tiny_cfg(arch, input_frames=t_in, output_frames=t_out)
    batch = 2 if arch == "paper" else 1
    y = numpy_out(build_network(cfg), frames(batch, t_in))
    assert y.shape == (batch, t_out, 1, 32, 32)
    assert y.dtype == np.float32
    assert np.all((y >= 0) & (y <= 1))


@pytest.mark.parametrize("overrides", [dict(patch_size=2, hidden_channels=[6]), dict(patch_size=8, image_size=64)])
def test_paper_shapes_follow_patch_size_and_image_size(overrides):
    cfg = tiny_cfg("paper", **overrides)
    size = cfg.image_size
    y = numpy_out(build_network(cfg), frames(1, 3, size))
    assert y.shape == (1, 2, 1, size, size)


def test_zoo_parameters_follow_the_layer_spec():
    """8.1 M parameters, written out layer by layer from the published layout."""

    def conv(cin, cout, k):
        return cin * cout * k * k + cout

    def cell(cin, hidden):  # one 5x5 conv over concat(x, h) -> 4*hidden, no bias; GroupNorm scale+shift
        return (cin + hidden) * 4 * hidden * 25 + 2 * 4 * hidden

    expected = (conv(1, 16, 3) + cell(16, 64) + conv(64, 64, 3) + cell(64, 96) + conv(96, 96, 3) + cell(96, 96)
                + cell(0, 96) + conv(96, 96, 4) + cell(96, 96) + conv(96, 96, 4) + cell(96, 64)
                + conv(64, 16, 3) + conv(16, 1, 1))
    net = build_network(tiny_cfg("zoo"))
    assert sum(p.size for p in net.trainable_params()) == expected == 8_108_577
    shapes = {p.name: p.shape for p in net.trainable_params()}
    assert shapes["enc_cell1.input_conv.weight"] == (256, 16, 5, 5)
    assert shapes["enc_cell1.state_conv.weight"] == (256, 64, 5, 5)
    assert shapes["dec_cell1.input_conv.weight"] == (256, 96, 5, 5)
    assert not any(name.startswith("dec_cell3.input_conv") for name in shapes)
    assert shapes["dec_deconv2.weight"] == (96, 96, 4, 4)


def test_paper_parameter_names_and_widths():
    net = build_network(tiny_cfg("paper", hidden_channels=[8, 4, 6], peephole=True))
    shapes = {p.name: p.shape for p in net.trainable_params()}
    assert shapes["encoder.0.input_conv.weight"] == (32, 16, 3, 3)  # 4x4 patches -> 16 channels
    assert shapes["encoder.2.state_conv.weight"] == (24, 6, 3, 3)
    assert not any(name.startswith("forecaster.0.input_conv") for name in shapes)
    assert shapes["forecaster.1.input_conv.weight"] == (16, 8, 3, 3)
    assert shapes["forecaster.0.peephole_f"] == (8, 8, 8)
    assert shapes["output_conv.weight"] == (16, 18, 1, 1)


def test_space_to_depth_layout_and_inverse():
    x = np.arange(2 * 1 * 8 * 8, dtype=np.float32).reshape(2, 1, 8, 8)
    y = space_to_depth(ms.Tensor(x), 4).asnumpy()
    assert y.shape == (2, 16, 2, 2)
    # channel dy*4+dx of patch (r, s) holds pixel (4r+dy, 4s+dx)
    assert y[1, 2 * 4 + 3, 1, 0] == x[1, 0, 4 + 2, 0 + 3]
    np.testing.assert_array_equal(depth_to_space(ms.Tensor(y), 4).asnumpy(), x)


class LossOnLogits(nn.Cell):
    """A training-style wrapper: calls forward_logits (not construct) of the wrapped network."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, x, y):
        logits = self.net.forward_logits(x)
        return ((ops.sigmoid(logits) - y) ** 2).mean(), logits


@pytest.mark.slow
def test_zoo_jit_matches_pynative():
    ms.set_seed(1)
    net, x = small_zoo(2, 2), ms.Tensor(frames(2, 2, size=16, seed=1))
    eager = net(x).asnumpy()

    @ms.jit
    def compiled(inputs):
        return net(inputs)

    np.testing.assert_allclose(compiled(x).asnumpy(), eager, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("forecaster_input", ["none", "prediction"])
def test_paper_forward_logits_in_wrapping_cell_graph_mode_matches_pynative(forecaster_input):
    """GRAPH_MODE, a wrapping cell calling forward_logits, every cell option on."""
    ms.set_seed(2)
    net = build_network(tiny_cfg("paper", input_frames=2, output_frames=2, peephole=True, group_norm=True,
                                 forecaster_input=forecaster_input))
    for p in net.trainable_params():  # non-zero peepholes, so they take part in the comparison
        if "peephole" in p.name:
            p.set_data(ms.Tensor(np.full(p.shape, 0.1, np.float32)))
    x = ms.Tensor(frames(2, 2, seed=2))
    y = ms.Tensor(frames(2, 2, seed=3))
    eager_logits = net.forward_logits(x).asnumpy()
    np.testing.assert_allclose(net(x).asnumpy(), 1 / (1 + np.exp(-eager_logits)), atol=1e-6)
    ms.set_context(mode=ms.GRAPH_MODE)
    loss, logits = LossOnLogits(net)(x, y)
    np.testing.assert_allclose(logits.asnumpy(), eager_logits, atol=1e-5)
    expected_loss = ((1 / (1 + np.exp(-eager_logits)) - y.asnumpy()) ** 2).mean()
    assert abs(float(loss) - expected_loss) < 1e-6


def test_adam_steps_reduce_the_loss():
    """A few eager Adam steps on one fixed batch (graph compilation is covered above)."""
    ms.set_seed(3)
    net = build_network(tiny_cfg("paper", hidden_channels=[8], output_bias=0.0))
    loss_net = LossOnLogits(net)
    optimizer = nn.Adam(net.trainable_params(), learning_rate=1e-2)
    grad_fn = ms.value_and_grad(loss_net, None, optimizer.parameters, has_aux=True)
    x = ms.Tensor(frames(2, 3, seed=4))
    y = ms.Tensor((frames(2, 2, seed=5) > 0.7).astype(np.float32))

    def train_step(inputs, targets):
        (loss, _), grads = grad_fn(inputs, targets)
        optimizer(grads)
        return float(loss)

    losses = [train_step(x, y) for _ in range(5)]
    assert np.all(np.isfinite(losses))
    assert np.all(np.diff(losses) < 0), losses
    assert losses[-1] < 0.95 * losses[0], losses


@pytest.mark.parametrize("arch", ["paper", "zoo"])
def test_first_input_frame_reaches_the_prediction(arch):
    """The forecaster sees the inputs only through the copied states: change frame 0 only."""
    ms.set_seed(4)
    if arch == "zoo":
        net, x = small_zoo(4, 2), frames(1, 4, size=16, seed=6)
    else:
        net, x = build_network(tiny_cfg(arch, input_frames=4, output_frames=2)), frames(1, 4, seed=6)
    x2 = x.copy()
    x2[:, 0] = 1.0 - x2[:, 0]
    diff = np.abs(numpy_out(net, x) - numpy_out(net, x2))
    assert diff.max() > 1e-5
    same = numpy_out(net, x.copy())
    np.testing.assert_array_equal(same, numpy_out(net, x))  # deterministic: the change is the cause


@pytest.mark.parametrize("arch", ["paper", "zoo"])
def test_output_bias_starts_predictions_near_black(arch):
    """cfg.output_bias sets the output layer's bias, so an untrained network predicts ~sigmoid(bias)."""
    import numpy as np
    from src.config import load_config
    from src.models.network import build_network
    cfg = load_config([], arch=arch, hidden_channels=[4], kernel_size=3, image_size=32, input_frames=2,
                      output_frames=2, output_bias=-6.0)
    net = build_network(cfg)
    out = net.output_conv if arch == "paper" else net.dec_out
    np.testing.assert_allclose(out.bias.asnumpy(), -6.0)
    x = ms.Tensor(np.zeros((1, 2, 1, 32, 32), np.float32))
    assert float(net(x).asnumpy().mean()) < 0.05


def _copy_weights(src, dst):
    values = {p.name: p.asnumpy() for p in src.trainable_params()}
    for p in dst.trainable_params():
        if p.name in values:
            p.set_data(ms.Tensor(values[p.name]))


def test_prediction_fed_forecaster_has_an_input_conv_on_patches():
    net = build_network(tiny_cfg("paper", forecaster_input="prediction"))
    shapes = {p.name: p.shape for p in net.trainable_params()}
    assert shapes["forecaster.0.input_conv.weight"] == (32, 16, 3, 3)  # reads 4x4 patches of a frame
    assert shapes["forecaster.1.input_conv.weight"] == (16, 8, 3, 3)


def test_prediction_fed_forecaster_with_zero_input_weights_is_the_paper_forecaster():
    """Frame-by-frame forecaster == layer-major forecaster when the fed-back frame is ignored."""
    ms.set_seed(5)
    cfg = dict(input_frames=3, output_frames=3, peephole=True)
    fed = build_network(tiny_cfg("paper", forecaster_input="prediction", **cfg))
    plain = build_network(tiny_cfg("paper", **cfg))
    _copy_weights(plain, fed)
    for p in fed.trainable_params():
        if "peephole" in p.name:
            p.set_data(ms.Tensor(np.full(p.shape, 0.1, np.float32)))
    _copy_weights(fed, plain)
    weight = fed.forecaster[0].input_conv.weight
    weight.set_data(ms.Tensor(np.zeros(weight.shape, np.float32)))
    x = frames(2, 3, seed=7)
    np.testing.assert_allclose(numpy_out(fed, x), numpy_out(plain, x), atol=1e-6)


def _cut_encoder_inputs(net):
    """Zero the encoder's first input convolution: its states no longer depend on the frames."""
    weight = net.encoder[0].input_conv.weight
    weight.set_data(ms.Tensor(np.zeros(weight.shape, np.float32)))


@pytest.mark.parametrize("forecaster_input", ["none", "prediction"])
def test_prediction_fed_forecaster_reads_the_last_observed_frame(forecaster_input):
    """With the encoder cut off from the frames, only the fed-back last frame can move the forecast."""
    ms.set_seed(6)
    net = build_network(tiny_cfg("paper", input_frames=3, output_frames=2, forecaster_input=forecaster_input))
    _cut_encoder_inputs(net)
    x = frames(1, 3, seed=8)
    first_changed, last_changed = x.copy(), x.copy()
    first_changed[:, 0] = 1.0 - x[:, 0]
    last_changed[:, -1] = 1.0 - x[:, -1]
    base = numpy_out(net, x)
    np.testing.assert_array_equal(numpy_out(net, first_changed), base)
    moved = np.abs(numpy_out(net, last_changed) - base).max(axis=(0, 2, 3, 4))  # per predicted frame
    if forecaster_input == "prediction":
        assert np.all(moved > 1e-5), moved
    else:
        np.testing.assert_array_equal(moved, 0.0)


def test_prediction_fed_forecaster_feeds_back_its_own_prediction():
    """Frame 2 of the forecast depends on frame 1's output layer even where the states do not:
    changing only the output bias of frame 1's logits changes what the forecaster reads next."""
    ms.set_seed(7)
    net = build_network(tiny_cfg("paper", input_frames=2, output_frames=2, forecaster_input="prediction"))
    x = frames(1, 2, seed=9)
    base = numpy_out(net, x)
    bias = net.output_conv.bias
    bias.set_data(ms.Tensor(bias.asnumpy() + 2.0))
    shifted = numpy_out(net, x)
    logit = lambda p: np.log(p) - np.log1p(-p)
    # frame 1: exactly the bias shift; frame 2: the bias shift plus the effect of a brighter input
    np.testing.assert_allclose(logit(shifted[:, 0]) - logit(base[:, 0]), 2.0, atol=1e-3)
    assert np.abs(logit(shifted[:, 1]) - logit(base[:, 1]) - 2.0).max() > 1e-3
