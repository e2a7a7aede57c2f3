"""ConvLSTM cell: gate equations against a direct NumPy evaluation, state handling, options."""
import numpy as np
import pytest

import mindspore as ms

from src.models.convlstm_cell import ConvLSTMCell, num_groups

B, H, W = 2, 6, 5


pytestmark = pytest.mark.usefixtures("pynative_mode")


# ----------------------------------------------------------------- NumPy reference
def np_conv_same(x, w):
    """Cross-correlation with 'same' zero padding. x (N, C, H, W), w (O, C, k, k) -> (N, O, H, W)."""
    k = w.shape[-1]
    p = k // 2
    n, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((n, w.shape[0], h, wd), np.float64)
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("nchw,oc->nohw", xp[:, :, dy:dy + h, dx:dx + wd], w[:, :, dy, dx])
    return out


def np_group_norm(z, groups, gamma, beta, eps=1e-5):
    n, c, h, w = z.shape
    zg = z.reshape(n, groups, -1)
    zn = (zg - zg.mean(-1, keepdims=True)) / np.sqrt(zg.var(-1, keepdims=True) + eps)
    return zn.reshape(n, c, h, w) * gamma.reshape(1, c, 1, 1) + beta.reshape(1, c, 1, 1)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def np_cell_sequence(cell, x, h, c, steps):
    """The paper's equations, written out gate by gate (order i, f, o, g), frame by frame."""
    hid = cell.hidden_channels
    params = {p.name.split(".")[-1]: p.asnumpy().astype(np.float64)
              for p in cell.get_parameters() if "conv" not in p.name}
    w_h = cell.state_conv.weight.asnumpy().astype(np.float64)
    w_x = cell.input_conv.weight.asnumpy().astype(np.float64) if cell.has_input else None
    outs = []
    for t in range(steps):
        z = np_conv_same(h, w_h)
        if w_x is not None:
            z = z + np_conv_same(x[t], w_x)
        if cell.use_group_norm:
            z = np_group_norm(z, num_groups(4 * hid), params["gamma"], params["beta"])
        else:
            z = z + params["bias"].reshape(1, 4 * hid, 1, 1)
        zi, zf, zo, zg = (z[:, j * hid:(j + 1) * hid] for j in range(4))
        if cell.use_peephole:
            w_ci, w_cf, w_co = params["peephole_i"], params["peephole_f"], params["peephole_o"]
        else:
            w_ci = w_cf = w_co = 0.0
        i = sigmoid(zi + w_ci * c)
        f = sigmoid(zf + w_cf * c)
        c = f * c + i * np.tanh(zg)
        o = sigmoid(zo + w_co * c)
        h = o * np.tanh(c)
        outs.append(h)
    return np.stack(outs), h, c


def randomise(cell, rng, scale=0.3):
    """Random values for every parameter (peepholes and biases start at zero/constants otherwise)."""
    for p in cell.get_parameters():
        p.set_data(ms.Tensor((rng.standard_normal(p.shape) * scale).astype(np.float32)))


def run_cell(cell, x, h, c, steps):
    state = None if h is None else (ms.Tensor(h.astype(np.float32)), ms.Tensor(c.astype(np.float32)))
    xs = None if x is None else ms.Tensor(x.astype(np.float32))
    hs, (h1, c1) = cell(xs, state, steps)
    return hs.asnumpy(), h1.asnumpy(), c1.asnumpy()


# ----------------------------------------------------------------- tests
@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("group_norm", [False, True])
def test_cell_matches_numpy_equations(peephole, group_norm):
    rng = np.random.default_rng(0)
    cin, hid, steps = 3, 8, 3
    cell = ConvLSTMCell(cin, hid, 3, (H, W), peephole=peephole, group_norm=group_norm)
    randomise(cell, rng)
    x = rng.random((steps, B, cin, H, W))
    h0 = rng.standard_normal((B, hid, H, W)) * 0.5
    c0 = rng.standard_normal((B, hid, H, W)) * 0.5
    hs, h1, c1 = run_cell(cell, x, h0, c0, steps)
    ref_hs, ref_h, ref_c = np_cell_sequence(cell, x, h0, c0, steps)
    assert hs.shape == (steps, B, hid, H, W)
    np.testing.assert_allclose(hs, ref_hs, atol=2e-5)
    np.testing.assert_allclose(h1, ref_h, atol=2e-5)
    np.testing.assert_allclose(c1, ref_c, atol=2e-5)


@pytest.mark.parametrize("peephole", [False, True])
def test_cell_without_input_matches_numpy(peephole):
    rng = np.random.default_rng(1)
    hid, steps = 4, 3
    cell = ConvLSTMCell(0, hid, 3, (H, W), peephole=peephole)
    randomise(cell, rng)
    h0 = rng.standard_normal((B, hid, H, W))
    c0 = rng.standard_normal((B, hid, H, W))
    hs, h1, c1 = run_cell(cell, None, h0, c0, steps)
    ref_hs, _, ref_c = np_cell_sequence(cell, None, h0, c0, steps)
    assert hs.shape == (steps, B, hid, H, W)
    np.testing.assert_allclose(hs, ref_hs, atol=2e-5)
    np.testing.assert_allclose(c1, ref_c, atol=2e-5)
    assert not any("input_conv" in p.name for p in cell.get_parameters())


@pytest.mark.parametrize("peephole,group_norm", [(False, False), (True, True)])
def test_zero_state_shortcut_equals_explicit_zeros(peephole, group_norm):
    rng = np.random.default_rng(2)
    cell = ConvLSTMCell(2, 4, 3, (H, W), peephole=peephole, group_norm=group_norm)
    randomise(cell, rng)
    x = rng.random((3, B, 2, H, W))
    zeros = np.zeros((B, 4, H, W))
    hs_none, _, c_none = run_cell(cell, x, None, None, 0)
    hs_zero, _, c_zero = run_cell(cell, x, zeros, zeros, 0)
    np.testing.assert_allclose(hs_none, hs_zero, atol=1e-6)
    np.testing.assert_allclose(c_none, c_zero, atol=1e-6)


def test_sequence_can_be_split_and_resumed_from_state():
    """Running T frames at once equals running 2 frames then the rest from the returned state."""
    rng = np.random.default_rng(3)
    cell = ConvLSTMCell(2, 4, 3, (H, W))
    randomise(cell, rng)
    x = rng.random((5, B, 2, H, W))
    hs_all, h_all, c_all = run_cell(cell, x, None, None, 0)
    hs_a, h_a, c_a = run_cell(cell, x[:2], None, None, 0)
    hs_b, h_b, c_b = run_cell(cell, x[2:], h_a, c_a, 0)
    np.testing.assert_allclose(np.concatenate([hs_a, hs_b]), hs_all, atol=1e-5)
    np.testing.assert_allclose(c_b, c_all, atol=1e-5)


def test_forget_bias_initialisation():
    cell = ConvLSTMCell(2, 4, 3, forget_bias=1.5)
    bias = cell.bias.asnumpy().ravel()
    np.testing.assert_array_equal(bias, [0] * 4 + [1.5] * 4 + [0] * 8)  # gate order i, f, o, g
    cell_gn = ConvLSTMCell(2, 4, 3, group_norm=True, forget_bias=2.0)
    np.testing.assert_array_equal(cell_gn.norm.beta.asnumpy(), [0] * 4 + [2.0] * 4 + [0] * 8)
    assert not hasattr(cell_gn, "bias")


def test_peepholes_start_at_zero_and_have_state_size():
    cell = ConvLSTMCell(2, 4, 3, (H, W), peephole=True)
    for p in (cell.peephole_i, cell.peephole_f, cell.peephole_o):
        assert p.shape == (4, H, W)
        assert not p.asnumpy().any()
    with pytest.raises(ValueError):
        ConvLSTMCell(2, 4, 3, peephole=True)


@pytest.mark.parametrize("channels,groups", [(32, 1), (16, 1), (256, 8), (384, 12), (200, 5), (4, 1)])
def test_num_groups(channels, groups):
    assert num_groups(channels) == groups
    assert channels % num_groups(channels) == 0
