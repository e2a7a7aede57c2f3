"""Convolutional LSTM cell (Shi et al. 2015, arXiv 1506.04214).

Equations, with ``*`` a convolution and ``o`` the Hadamard product::

    i  = sigmoid(W_xi * x + W_hi * h + W_ci o c  + b_i)
    f  = sigmoid(W_xf * x + W_hf * h + W_cf o c  + b_f)
    g  = tanh   (W_xg * x + W_hg * h             + b_g)
    c' = f o c + i o g
    o  = sigmoid(W_xo * x + W_ho * h + W_co o c' + b_o)
    h' = o o tanh(c')

Layout and speed choices (CPU training is dominated by these convolutions):

* The cell runs a whole sequence at once and works **time-major**: inputs are
  ``(T, B, C_in, H, W)``. The input-to-state convolution of all T frames is ONE batched
  convolution over ``T*B`` images, done before the recurrence; inside the recurrence only
  the state-to-state convolution remains. Running a stack layer by layer over the whole
  sequence is mathematically the same as running it frame by frame, because every layer's
  input sequence is known before its own recurrence starts.
* The two convolutions output the four gate pre-activations in the channel order
  ``i, f, o, g``; ONE equal four-way split separates them. (A single sigmoid over a
  contiguous i, f, o block needs an unequal split, which MindSpore's CPU backend runs as two
  StridedSlice ops; measured slower, fwd+bwd, than the equal split with three sigmoids.)
* The per-step input pre-activations are taken with one ``split`` into T pieces: indexing
  ``z[t]`` would make the backward pass build T zero-padded full-size gradients (quadratic in
  T; measured 5-7x slower for T = 10). The backward of the split is one concatenation, as
  that of ``unstack`` was; ``split`` is used because MindSpore's ONNX exporter has no
  ``Unstack``. Per-step values are collected in tuples, not lists (the exporter has no
  ``make_list`` either).
* A zero initial state (``state=None``) skips the state-to-state convolution of the
  first step (its result would be zero).
* ``input_channels == 0`` gives a cell without input (the first forecaster cell): only
  the state-to-state convolution and the bias drive it.

Options:

* ``peephole``: the paper's Hadamard weights W_ci, W_cf, W_co, one weight per channel AND
  per pixel (shape ``(C, H, W)``, the full state size, as in the paper), initialised to
  zero so that a fresh cell behaves like one without peepholes. They need the state's
  spatial size at construction (``spatial_size``).
* ``group_norm``: GroupNorm over the 4*C gate pre-activations, ``max(1, 4*C // 32)``
  groups (reduced to a divisor of 4*C if needed). It normalises the SUM of both
  convolutions of each step. The GroupNorm shift then plays the role of the gate bias
  (a bias added before the normalisation would be removed by it), so the cell has no
  separate bias in that case. It runs MindSpore's fused GroupNorm kernel; for ONNX export
  (the exporter has no GroupNorm) ``GateNorm.primitive_ops`` switches it to the same
  normalisation written with reshape, mean and sqrt (equal to float rounding).
* ``forget_bias``: initial value of the forget-gate bias (or GroupNorm shift).
"""
import numpy as np

from mindspore import Parameter, Tensor, nn, ops

GATE_ORDER = ("i", "f", "o", "g")


def num_groups(channels, group_size=32):
    groups = max(1, channels // group_size)
    while channels % groups:
        groups -= 1
    return groups


def framewise(layer, x):
    """Apply a frame-wise layer to every frame at once. x (T, B, C, H, W) -> (T, B, C', H', W')."""
    t, b = x.shape[0], x.shape[1]
    y = layer(x.reshape((t * b,) + x.shape[2:]))  # (T*B, C', H', W')
    return y.reshape((t, b) + y.shape[1:])


def _gate_init(hidden_channels, forget_value):
    values = np.zeros(4 * hidden_channels, dtype=np.float32)
    values[hidden_channels:2 * hidden_channels] = forget_value
    return Tensor(values)


class GateNorm(nn.GroupNorm):
    """GroupNorm of the gate pre-activations (N, 4C, H, W); ``primitive_ops`` (ONNX export only)
    writes it from reshape / mean / sqrt, measured ~1.3x slower fwd+bwd on CPU at (4, 256, 64, 64)."""

    primitive_ops = False

    def construct(self, x):
        if self.primitive_ops:
            return self._normalise_with_primitives(x)
        return super().construct(x)

    def _normalise_with_primitives(self, x):
        n, c, h, w = x.shape
        groups = x.reshape(n, self.num_groups, -1)  # (N, G, C/G*H*W)
        mean = groups.mean(axis=2, keep_dims=True)
        centred = groups - mean
        var = (centred * centred).mean(axis=2, keep_dims=True)  # biased, as GroupNorm
        normed = (centred / ops.sqrt(var + self.eps)).reshape(n, c, h, w)
        return normed * self.gamma.reshape(c, 1, 1) + self.beta.reshape(c, 1, 1)


class ConvLSTMCell(nn.Cell):
    """One ConvLSTM layer, run over a whole (time-major) sequence.

    Args:
        input_channels: channels of the input frames; 0 for a cell without input.
        hidden_channels: channels C of h and c.
        kernel_size: odd kernel size of both convolutions ("same" padding).
        spatial_size: (H, W) of the state; required with ``peephole``.
        peephole: Hadamard peephole weights of shape (C, H, W) on the cell state.
        group_norm, forget_bias: see the module docstring.

    ``construct(inputs, state=None, steps=0)``:
        inputs: (T, B, C_in, H, W) float32, or None when ``input_channels == 0``
            (then ``steps`` frames are produced from ``state`` alone).
        state: (h, c), each (B, C, H, W); None means zeros (needs ``inputs``).
        Returns ``(hs, (h, c))``: hs (T, B, C, H, W) all hidden states, and the last state.
    """

    def __init__(self, input_channels, hidden_channels, kernel_size=5, spatial_size=None,
                 peephole=False, group_norm=False, forget_bias=1.0):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if peephole and spatial_size is None:
            raise ValueError("peephole connections need the state's spatial_size (H, W)")
        self.input_channels = int(input_channels)
        self.hidden_channels = int(hidden_channels)
        self.kernel_size = int(kernel_size)
        self.use_peephole = bool(peephole)
        self.use_group_norm = bool(group_norm)
        gates = 4 * self.hidden_channels
        pad = self.kernel_size // 2
        self.has_input = self.input_channels > 0
        if self.has_input:
            self.input_conv = nn.Conv2d(self.input_channels, gates, self.kernel_size, pad_mode="pad",
                                        padding=pad, has_bias=False)
        self.state_conv = nn.Conv2d(self.hidden_channels, gates, self.kernel_size, pad_mode="pad",
                                    padding=pad, has_bias=False)
        if self.use_group_norm:
            self.norm = GateNorm(num_groups(gates), gates, beta_init=_gate_init(self.hidden_channels,
                                                                                 forget_bias))
        else:
            self.bias = Parameter(_gate_init(self.hidden_channels, forget_bias).reshape(gates, 1, 1), name="bias")
        if self.use_peephole:
            height, width = spatial_size
            zeros = np.zeros((self.hidden_channels, height, width), np.float32)
            self.peephole_i = Parameter(Tensor(zeros), name="peephole_i")  # W_ci, applied to c
            self.peephole_f = Parameter(Tensor(zeros), name="peephole_f")  # W_cf, applied to c
            self.peephole_o = Parameter(Tensor(zeros), name="peephole_o")  # W_co, applied to c'

    def frame_input_to_state(self, frames):
        """Input-to-state pre-activations of a batch of frames: (N, C_in, H, W) -> (N, 4C, H, W).
        The bias (no GroupNorm) is included."""
        z = self.input_conv(frames)  # (N, 4C, H, W)
        if not self.use_group_norm:
            z = z + self.bias
        return z

    def input_to_state(self, inputs):
        """Input-to-state pre-activations of all frames in one convolution (bias included):
        inputs (T, B, C_in, H, W) -> (T, B, 4C, H, W)."""
        return framewise(self.frame_input_to_state, inputs)

    def _activate(self, z, c):
        """Gate nonlinearities and state update. z (B, 4C, H, W) pre-activations, c (B, C, H, W) or None
        (zero). Returns (h', c')."""
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

    def step(self, z_input, h, c):
        """One recurrence step. z_input: (B, 4C, H, W) input pre-activations (None for a cell without
        input); h, c: (B, C, H, W), or both None for the zero state. Returns (h', c')."""
        if h is None:
            z = z_input
        else:
            z = self.state_conv(h)  # (B, 4C, H, W)
            if z_input is not None:
                z = z + z_input
            elif not self.use_group_norm:
                z = z + self.bias
        return self._activate(z, c)

    def construct(self, inputs, state=None, steps=0):
        if self.has_input:
            # one split, not z[t]: the gradient of T slices would be T full-size zero-padded tensors
            z_inputs = ops.split(self.input_to_state(inputs), 1, axis=0)  # T x (1, B, 4C, H, W)
            num_steps = inputs.shape[0]
        else:
            z_inputs = None
            num_steps = steps
        if state is None:
            h, c = None, None
        else:
            h, c = state
        outputs = ()
        for t in range(num_steps):
            z_t = None
            if self.has_input:
                z_t = z_inputs[t].squeeze(0)  # (B, 4C, H, W)
            h, c = self.step(z_t, h, c)
            outputs = outputs + (h,)
        return ops.stack(outputs, axis=0), (h, c)  # (T, B, C, H, W)
