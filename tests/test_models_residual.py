"""``residual``: paper and stacked networks whose output layer adds a change to the latest frame read
(src/models/encoder_forecaster.py, src/models/stacked.py): persistence when the change is zero, the change
itself otherwise, the observed steps of ``loss_frames all`` too, graph mode, and the config's refusals."""
import numpy as np
import pytest

import mindspore as ms

from src.config import load_config
from src.errors import ConfigError
from src.models.mixed_precision import training_forward
from src.models.network import build_network
from src.training.sampling import inference_mask
from tests.graph_mode import assert_graph_mode_matches_pynative

pytestmark = pytest.mark.usefixtures("pynative_mode")
T_IN, T_OUT, SIZE = 3, 4, 32


def cfg(arch, residual=True, **overrides):
    values = dict(arch=arch, image_size=SIZE, input_frames=T_IN, output_frames=T_OUT, hidden_channels=[4, 4],
                  kernel_size=3, patch_size=4, loss="mse", output_activation="linear", output_bias=0.0,
                  residual=residual)
    values.update(overrides)
    return load_config([], **values)


def network(arch, residual=True, **overrides):
    ms.set_seed(0)
    return build_network(cfg(arch, residual, **overrides))


def inputs(seed=0, batch=2):
    rng = np.random.default_rng(seed)
    seq = (0.8 * rng.random((batch, T_IN + T_OUT, 1, SIZE, SIZE))).astype(np.float32)
    return ms.Tensor(seq[:, :T_IN]), ms.Tensor(seq[:, T_IN:])


def zero_output_layer(net):
    for param in net.output_conv.get_parameters():
        param.set_data(ms.Tensor(np.zeros(param.shape, np.float32)))


@pytest.mark.parametrize("arch", ["paper", "stacked"])
def test_a_zero_change_is_persistence(arch):
    net = network(arch)
    zero_output_layer(net)
    x, _ = inputs()
    out = net(x).asnumpy()  # (B, T_out, C, H, W)
    last = x.asnumpy()[:, T_IN - 1]
    for t in range(T_OUT):
        np.testing.assert_allclose(out[:, t], last, atol=1e-6)


@pytest.mark.parametrize("arch", ["paper", "stacked"])
def test_observed_steps_predict_their_frame_plus_the_change(arch):
    """loss_frames all: step t of the observed frames predicts frame t+1 as frame t (+ a zero change here)."""
    net = network(arch)
    zero_output_layer(net)
    x, y = inputs(1)
    train = net.forward_train(x, y, ms.Tensor(inference_mask(2, T_IN, T_OUT)), all_frames=True).asnumpy()
    assert train.shape == (2, T_IN - 1 + T_OUT, 1, SIZE, SIZE)
    np.testing.assert_allclose(train[:, :T_IN - 1], x.asnumpy()[:, :T_IN - 1], atol=1e-6)


def test_paper_forecast_is_the_plain_output_plus_the_last_frame():
    """The same weights with and without residual differ by exactly the last observed frame, on every lead."""
    plain, residual = network("paper", residual=False), network("paper")
    ms.load_param_into_net(residual, {p.name: p for p in plain.get_parameters()})
    x, _ = inputs(2)
    change = residual.forward_logits(x).asnumpy() - plain.forward_logits(x).asnumpy()
    assert np.abs(plain.forward_logits(x).asnumpy()).max() > 1e-3  # a change that is not zero
    for t in range(T_OUT):
        np.testing.assert_allclose(change[:, t], x.asnumpy()[:, T_IN - 1], atol=1e-5)


def test_stacked_adds_the_change_to_its_own_previous_prediction():
    """Stacked: the frame a forecast step reads is its previous prediction, so frame k+1 - frame k is the output
    layer's change at step k, not the change from the last observed frame."""
    plain, residual = network("stacked", residual=False), network("stacked")
    ms.load_param_into_net(residual, {p.name: p for p in plain.get_parameters()})
    x, _ = inputs(3)
    first_plain = plain.forward_logits(x).asnumpy()[:, 0]
    first = residual.forward_logits(x).asnumpy()[:, 0]
    np.testing.assert_allclose(first - first_plain, x.asnumpy()[:, T_IN - 1], atol=1e-5)  # same states up to there


@pytest.mark.slow
def test_graph_mode_matches_pynative():
    net = network("paper")
    x, y = inputs(4)
    mask = ms.Tensor(inference_mask(2, T_IN, T_OUT))
    forward = training_forward(net, "O0", all_frames=True)
    assert_graph_mode_matches_pynative([(forward, (x, y, mask)), (net, (x,))])


@pytest.mark.parametrize("overrides, named", [
    (dict(output_activation="sigmoid", loss="bce"), "output_activation"),
    (dict(forecaster_input="prediction"), "forecaster_input"),
    (dict(output_bias=-3.0), "output_bias"),
    (dict(arch="zoo"), "linear"),
])
def test_refused_where_it_cannot_work(overrides, named):
    values = dict(overrides)
    arch = values.pop("arch", "paper")
    with pytest.raises(ConfigError, match=named):
        cfg(arch, **values)


def test_linear_output_is_available_for_paper_and_clipped_when_read_out():
    net = network("paper", residual=False)
    x, _ = inputs(5)
    logits, frames = net.forward_logits(x).asnumpy(), net(x).asnumpy()
    np.testing.assert_allclose(frames, np.clip(logits, 0.0, 1.0), atol=1e-7)
