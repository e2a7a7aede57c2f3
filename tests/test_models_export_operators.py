"""The operators chosen for MindSpore's ONNX exporter leave the MindSpore network's numbers
unchanged: the one ``split`` of the recurrence equals the ``unstack`` it replaced (outputs and
gradients bit-identical), and GateNorm's primitive-operator GroupNorm (used only for ONNX
export) equals the fused kernel to float rounding."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import nn, ops

from src.models.convlstm_cell import ConvLSTMCell, GateNorm
from src.models.encoder_forecaster import ZooEncoderForecaster
from src.models.network import build_network
from tests.exported_models import tiny_config


def unstack_construct(self, inputs, state=None, steps=0):
    """ConvLSTMCell.construct as it was before the split: unstack, and a list of outputs."""
    if self.has_input:
        z_inputs = ops.unstack(self.input_to_state(inputs), axis=0)  # T x (B, 4C, H, W)
        num_steps = inputs.shape[0]
    else:
        z_inputs, num_steps = None, steps
    h, c = (None, None) if state is None else state
    outputs = []
    for t in range(num_steps):
        h, c = self.step(z_inputs[t] if self.has_input else None, h, c)
        outputs.append(h)
    return ops.stack(outputs, axis=0), (h, c)  # (T, B, C, H, W)


def _outputs_and_gradients(net, x, y):
    def loss(inputs, targets):
        return ((net.forward_logits(inputs) - targets) ** 2).mean()

    value, grads = ms.value_and_grad(loss, None, net.trainable_params())(x, y)
    return [net(x).asnumpy(), value.asnumpy()] + [g.asnumpy() for g in grads]


def _perturbed(net, seed=1):
    rng = np.random.default_rng(seed)
    for _, param in sorted(net.parameters_and_names()):
        param.set_data(ms.Tensor((param.asnumpy() + 0.1 * rng.standard_normal(param.shape)).astype(np.float32)))
    return net


CASES = {
    "paper": dict(hidden_channels=[4, 4], kernel_size=3),
    "paper_fed": dict(hidden_channels=[4, 4], kernel_size=3, forecaster_input="prediction"),
    "paper_peephole_group_norm": dict(hidden_channels=[4, 4], kernel_size=3, peephole=True, group_norm=True),
    "zoo_peephole": dict(arch="zoo", peephole=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_split_recurrence_equals_the_unstack_it_replaced(case, monkeypatch, pynative_mode):
    cfg = tiny_config(".", image_size=32, input_frames=4, output_frames=3, **CASES[case])
    ms.set_seed(0)
    net = ZooEncoderForecaster(4, 3, 32, peephole=True, channels=(4, 8, 8)) if cfg.arch == "zoo" else build_network(cfg)
    _perturbed(net)
    rng = np.random.default_rng(2)
    x = ms.Tensor(rng.random((2, 4, 1, 32, 32), dtype=np.float32))  # (B, T_in, 1, H, W)
    y = ms.Tensor(rng.random((2, 3, 1, 32, 32), dtype=np.float32))  # (B, T_out, 1, H, W)
    now = _outputs_and_gradients(net, x, y)
    monkeypatch.setattr(ConvLSTMCell, "construct", unstack_construct)
    before = _outputs_and_gradients(net, x, y)
    assert len(now) == len(before) > 3
    for a, b in zip(now, before):
        np.testing.assert_array_equal(a, b)
    assert np.abs(now[2]).max() > 0  # the gradients are not trivially zero


def test_gate_norm_primitive_operators_match_the_fused_kernel(pynative_mode):
    norm = GateNorm(4, 32, gamma_init="normal", beta_init="normal")
    x = ms.Tensor((3.0 * np.random.default_rng(0).standard_normal((2, 32, 6, 6)) + 1.0).astype(np.float32))
    weight = ms.Tensor(np.random.default_rng(1).standard_normal((2, 32, 6, 6)).astype(np.float32))

    def run(primitive):
        norm.primitive_ops = primitive

        def loss(inputs):
            return (norm(inputs) * weight).sum()

        value, (dx, (dgamma, dbeta)) = ms.value_and_grad(loss, 0, norm.trainable_params())(x)
        return [norm(x).asnumpy(), value.asnumpy(), dx.asnumpy(), dgamma.asnumpy(), dbeta.asnumpy()]

    fused, primitive = run(False), run(True)
    stock = nn.GroupNorm(4, 32)  # GateNorm by default is MindSpore's own GroupNorm
    stock.gamma.set_data(ms.Tensor(norm.gamma.asnumpy()))
    stock.beta.set_data(ms.Tensor(norm.beta.asnumpy()))
    np.testing.assert_array_equal(fused[0], stock(x).asnumpy())
    for a, b in zip(fused, primitive):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
    assert np.abs(fused[0] - primitive[0]).max() <= 1e-6
