"""The stacked next-frame network (src/models/stacked.py): inference contract, the sampling mask's two
limits (all true frames = teacher forcing, the inference mask = inference), graph mode, export shapes."""
import numpy as np
import pytest

import mindspore as ms

from src.config import load_config
from src.models.encoder_forecaster import depth_to_space, space_to_depth
from src.models.mixed_precision import training_forward
from src.models.network import build_network
from src.training.sampling import inference_mask
from tests.graph_mode import assert_graph_mode_matches_pynative

pytestmark = pytest.mark.usefixtures("pynative_mode")
T_IN, T_OUT, SIZE = 3, 3, 32


def stacked_cfg(**overrides):
    values = dict(arch="stacked", image_size=SIZE, input_frames=T_IN, output_frames=T_OUT, hidden_channels=[4, 4],
                  kernel_size=3, patch_size=4, forget_bias=0.0, output_bias=0.0)
    values.update(overrides)
    return load_config([], **values)


def sequence(seed=0, batch=2):
    rng = np.random.default_rng(seed)
    seq = rng.random((batch, T_IN + T_OUT, 1, SIZE, SIZE)).astype(np.float32)
    return ms.Tensor(seq[:, :T_IN]), ms.Tensor(seq[:, T_IN:])


def network(**overrides):
    ms.set_seed(0)
    return build_network(stacked_cfg(**overrides))


@pytest.mark.parametrize("activation", ["sigmoid", "linear"])
def test_output_shape_and_range(activation):
    x, _ = sequence()
    out = network(output_activation=activation, loss="mse")(x).asnumpy()
    assert out.shape == (2, T_OUT, 1, SIZE, SIZE)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_inference_mask_gives_inference_without_reading_the_targets():
    """Zeros on the predicted steps: the targets (here huge random values) never reach the output."""
    net = network()
    x, y = sequence()
    garbage = ms.Tensor(np.random.default_rng(5).normal(0, 1e6, y.shape).astype(np.float32))
    mask = ms.Tensor(inference_mask(2, T_IN, T_OUT))
    inference = net.forward_logits(x).asnumpy()
    for targets in (y, garbage):
        train = net.forward_train(x, targets, mask, all_frames=True).asnumpy()  # (B, T-1, C, H, W)
        assert train.shape == (2, T_IN + T_OUT - 1, 1, SIZE, SIZE)
        np.testing.assert_array_equal(train[:, T_IN - 1:], inference)
        np.testing.assert_array_equal(net.forward_train(x, targets, mask, all_frames=False).asnumpy(), inference)


def teacher_forced_logits(net, frames):
    """Logits of frames 1 .. T-1 when every step reads the true frame, one step at a time."""
    patches = [space_to_depth(ms.Tensor(frames[:, t]), 4) for t in range(frames.shape[1])]
    hs = cs = None
    logits = []
    for t in range(frames.shape[1] - 1):
        logit, hs, cs = net._step(patches[t], hs, cs)  # pylint: disable=protected-access
        logits.append(depth_to_space(logit, 4).asnumpy())
    return np.stack(logits, axis=1)


def test_all_ones_mask_is_teacher_forcing():
    net = network()
    x, y = sequence(1)
    ones = ms.Tensor(np.ones((2, T_IN + T_OUT - 2), np.float32))
    train = net.forward_train(x, y, ones, all_frames=True).asnumpy()
    frames = np.concatenate([x.asnumpy(), y.asnumpy()], axis=1)
    np.testing.assert_allclose(train, teacher_forced_logits(net, frames), rtol=1e-5, atol=1e-6)
    # and the targets are read: other targets change the predicted-step logits
    other = net.forward_train(x, ms.Tensor(y.asnumpy()[::-1].copy()), ones, all_frames=True).asnumpy()
    assert np.abs(other[:, T_IN:] - train[:, T_IN:]).max() > 1e-4


def test_mask_mixes_per_sequence():
    """Row b of the mask decides for sequence b only: a mask true for sequence 0 and not for sequence 1
    gives sequence 0 the teacher-forced output and sequence 1 the inference output."""
    net = network()
    x, y = sequence(2)
    mask = inference_mask(2, T_IN, T_OUT)
    mask[0] = 1.0
    mixed = net.forward_train(x, y, ms.Tensor(mask), all_frames=True).asnumpy()
    ones = net.forward_train(x, y, ms.Tensor(np.ones_like(mask)), all_frames=True).asnumpy()
    inference = net.forward_train(x, y, ms.Tensor(inference_mask(2, T_IN, T_OUT)), all_frames=True).asnumpy()
    np.testing.assert_allclose(mixed[0], ones[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixed[1], inference[1], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_graph_mode_matches_pynative():
    net = network()
    x, y = sequence(3)
    mask = ms.Tensor((np.random.default_rng(0).random((2, T_IN + T_OUT - 2)) < 0.5).astype(np.float32))
    forward = training_forward(net, "O0", all_frames=True)
    assert_graph_mode_matches_pynative([(forward, (x, y, mask)), (forward, (x,))])


def test_paper_all_frames_adds_the_encoder_steps_and_keeps_the_forecast():
    cfg = load_config([], arch="paper", image_size=SIZE, input_frames=T_IN, output_frames=T_OUT, hidden_channels=[4],
                      kernel_size=3, patch_size=4)
    ms.set_seed(0)
    net = build_network(cfg)
    x, y = sequence(4)
    mask = ms.Tensor(inference_mask(2, T_IN, T_OUT))
    train = net.forward_train(x, y, mask, all_frames=True).asnumpy()
    assert train.shape == (2, T_IN - 1 + T_OUT, 1, SIZE, SIZE)
    np.testing.assert_allclose(train[:, T_IN - 1:], net.forward_logits(x).asnumpy(), rtol=1e-5, atol=1e-6)
    # the encoder's prediction of frame 1 depends on frame 0 only
    x2 = x.asnumpy().copy()
    x2[:, 1:] = 0.0
    early = net.forward_train(ms.Tensor(x2), y, mask, all_frames=True).asnumpy()
    np.testing.assert_allclose(early[:, 0], train[:, 0], rtol=1e-5, atol=1e-6)


def test_no_bias_in_the_cells_but_the_gate_bias():
    """The stack: per layer an input and a state convolution without bias and one gate bias (zero with
    forget_bias 0), then the 1x1 output convolution."""
    names = sorted(p.name for p in network().get_parameters())
    assert names == ["layers.0.bias", "layers.0.input_conv.weight", "layers.0.state_conv.weight",
                     "layers.1.bias", "layers.1.input_conv.weight", "layers.1.state_conv.weight",
                     "output_conv.bias", "output_conv.weight"]
    assert float(np.abs(network().layers[0].bias.asnumpy()).max()) == 0.0
