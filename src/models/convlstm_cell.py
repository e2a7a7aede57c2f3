"""Convolutional LSTM cell (Shi et al. 2015, arXiv 1506.04214); ``*`` a convolution, ``o`` Hadamard::

    i  = sigmoid(W_xi * x + W_hi * h + W_ci o c  + b_i)
    f  = sigmoid(W_xf * x + W_hf * h + W_cf o c  + b_f)
    g  = tanh   (W_xg * x + W_hg * h             + b_g)
    c' = f o c + i o g
    o  = sigmoid(W_xo * x + W_ho * h + W_co o c' + b_o)
    h' = o o tanh(c')

Speed: the input-to-state convolution of all T frames is ONE convolution over ``T*B`` images; gates
``i, f, o, g`` come from ONE equal split (an unequal one is two slow StridedSlice ops); per-step inputs
from one ``split`` (``z[t]`` makes backward build T zero-padded gradients, 5-7x slower; the ONNX exporter
has no ``Unstack``/``make_list``, hence split and tuples); a zero initial state skips a convolution.
``peephole``: per-channel AND per-pixel weights ``(C, H, W)``, zero at first. ``group_norm``: over the
SUM of both convolutions' gates, its shift the gate bias (a bias before it would be normalised away).
"""
import numpy as np

from mindspore import Parameter, Tensor, nn, ops


def num_groups(channels, group_size=32):
    groups = max(1, channels // group_size)
    while channels % groups:
        groups -= 1
    return groups


def same_conv(cin, cout, kernel, stride=1, has_bias=True):
    """A 'same'-padded convolution: output size = input size / stride."""
    return nn.Conv2d(cin, cout, kernel, stride=stride, pad_mode="pad", padding=kernel // 2, has_bias=has_bias)


def framewise(layer, x, *args):
    """Apply a frame-wise layer to every frame at once. x (T, B, C, H, W) -> (T, B, C', H', W')."""
    t, b = x.shape[0], x.shape[1]
    y = layer(x.reshape((t * b,) + x.shape[2:]), *args)  # (T*B, C', H', W')
    return y.reshape((t, b) + y.shape[1:])


class GateNorm(nn.GroupNorm):
    """GroupNorm of the gate pre-activations (N, 4C, H, W). ``primitive_ops`` (ONNX export only: the
    exporter has no GroupNorm) writes it with reshape / mean / sqrt, ~1.3x slower fwd+bwd on CPU."""

    primitive_ops = False

    def construct(self, x):
        if not self.primitive_ops:
            return super().construct(x)
        n, c, h, w = x.shape
        groups = x.reshape(n, self.num_groups, -1)  # (N, G, C/G*H*W)
        centred = groups - groups.mean(axis=2, keep_dims=True)
        var = (centred * centred).mean(axis=2, keep_dims=True)  # biased, as GroupNorm
        normed = (centred / ops.sqrt(var + self.eps)).reshape(n, c, h, w)
        return normed * self.gamma.reshape(c, 1, 1) + self.beta.reshape(c, 1, 1)


class ConvLSTMCell(nn.Cell):
    """One ConvLSTM layer (odd ``kernel_size``, "same" padding) run over a whole sequence:
    ``construct(inputs (T, B, C_in, H, W) or None, state (h, c) or None for zeros, steps)`` ->
    (all hidden states (T, B, C, H, W), last (h, c)); ``steps`` frames when there is no input."""

    def __init__(self, input_channels, hidden_channels, kernel_size=5, spatial_size=None,
                 peephole=False, group_norm=False, forget_bias=1.0):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if peephole and spatial_size is None:
            raise ValueError("peephole connections need the state's spatial_size (H, W)")
        self.input_channels, self.hidden_channels = int(input_channels), int(hidden_channels)
        self.kernel_size = int(kernel_size)
        self.use_peephole, self.use_group_norm = bool(peephole), bool(group_norm)
        gates = 4 * self.hidden_channels
        self.has_input = self.input_channels > 0
        if self.has_input:
            self.input_conv = same_conv(self.input_channels, gates, self.kernel_size, has_bias=False)
        self.state_conv = same_conv(self.hidden_channels, gates, self.kernel_size, has_bias=False)
        values = np.zeros(gates, dtype=np.float32)
        values[self.hidden_channels:2 * self.hidden_channels] = forget_bias
        gate_init = Tensor(values)  # (4C,)
        if self.use_group_norm:
            self.norm = GateNorm(num_groups(gates), gates, beta_init=gate_init)
        else:
            self.bias = Parameter(gate_init.reshape(gates, 1, 1), name="bias")
        if self.use_peephole:
            zeros = np.zeros((self.hidden_channels,) + tuple(spatial_size), np.float32)
            self.peephole_i = Parameter(Tensor(zeros), name="peephole_i")  # W_ci, applied to c
            self.peephole_f = Parameter(Tensor(zeros), name="peephole_f")  # W_cf, applied to c
            self.peephole_o = Parameter(Tensor(zeros), name="peephole_o")  # W_co, applied to c'

    def frame_input_to_state(self, frames):
        """(N, C_in, H, W) -> (N, 4C, H, W) input pre-activations, bias included (no GroupNorm)."""
        z = self.input_conv(frames)  # (N, 4C, H, W)
        if not self.use_group_norm:
            z = z + self.bias
        return z

    def input_to_state(self, inputs):
        """All frames in one convolution: (T, B, C_in, H, W) -> (T, B, 4C, H, W)."""
        return framewise(self.frame_input_to_state, inputs)

    def step(self, z_input, h, c):
        """One recurrence step -> (h', c'). z_input (B, 4C, H, W) or None without input; h, c None: zeros."""
        if h is None:
            z = z_input
        else:
            z = self.state_conv(h)  # (B, 4C, H, W)
            if z_input is not None:
                z = z + z_input
            elif not self.use_group_norm:
                z = z + self.bias
        if self.use_group_norm:
            z = self.norm(z)
        z_i, z_f, z_o, z_g = ops.split(z, self.hidden_channels, axis=1)  # 4 x (B, C, H, W)
        if self.use_peephole and c is not None:
            z_i = z_i + self.peephole_i * c
            z_f = z_f + self.peephole_f * c
        c_new = ops.sigmoid(z_i) * ops.tanh(z_g)
        if c is not None:
            c_new = c_new + ops.sigmoid(z_f) * c
        if self.use_peephole:
            z_o = z_o + self.peephole_o * c_new
        h_new = ops.sigmoid(z_o) * ops.tanh(c_new)
        return h_new, c_new

    def construct(self, inputs, state=None, steps=0):
        z_inputs, num_steps = None, steps
        if self.has_input:  # one split, not z[t] (see the module docstring)
            z_inputs = ops.split(self.input_to_state(inputs), 1, axis=0)  # T x (1, B, 4C, H, W)
            num_steps = inputs.shape[0]
        h, c = (None, None) if state is None else state
        outputs = ()
        for t in range(num_steps):
            z_t = z_inputs[t].squeeze(0) if self.has_input else None  # (B, 4C, H, W)
            h, c = self.step(z_t, h, c)
            outputs = outputs + (h,)
        return ops.stack(outputs, axis=0), (h, c)  # (T, B, C, H, W)
