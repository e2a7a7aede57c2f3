"""PyTorch CPU reference of both networks, for speed comparison only (bench/bench_step.py).

Two layouts of the same layers:

* ``frame`` (default), the way a PyTorch user typically writes a ConvLSTM: **frame by
  frame**. Every ConvLSTM step runs ONE convolution over ``concat(x_t, h)`` giving the 4C
  gate pre-activations; the frame-wise convolutions of the zoo network run once per frame.
* ``layer``, the layout of this project's MindSpore code: **layer-major**. Each layer runs
  over the whole sequence before the next one; frame-wise convolutions and the
  input-to-state convolution of every cell run once over all ``T*B`` frames, and only the
  state-to-state convolution stays in the recurrence. Same function, same parameter count
  (the fused ``concat(x, h)`` kernel is split into its x and h parts).

The layer specifications are the same as ``src/models`` (see ``encoder_forecaster``):
same channels, kernels, strides, GroupNorm groups, LeakyReLU(0.2), patching, and the
same parameter counts (checked by ``count_parameters`` against ``src.models.flops``).
Peepholes are not implemented (the benchmarked configurations do not use them).

The project does not depend on PyTorch; only the benchmark imports this file.
"""
import contextlib

import torch
from torch import nn

ZOO_KERNEL = 5
ZOO_LEAKY_SLOPE = 0.2


def num_groups(channels, group_size=32):
    """Same GroupNorm group count as ``src.models.convlstm_cell.num_groups``."""
    groups = max(1, channels // group_size)
    while channels % groups:
        groups -= 1
    return groups


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: conv over concat(x, h) -> (GroupNorm) -> gates i, f, o, g."""

    def __init__(self, input_channels, hidden_channels, kernel_size=5, group_norm=False):
        super().__init__()
        self.hidden_channels = hidden_channels
        gates = 4 * hidden_channels
        self.conv = nn.Conv2d(input_channels + hidden_channels, gates, kernel_size, padding=kernel_size // 2,
                              bias=not group_norm)
        self.norm = nn.GroupNorm(num_groups(gates), gates) if group_norm else None

    def forward(self, x, state):
        """x (B, C_in, H, W) or None (cell without input); state (h, c) -> (h', c')."""
        h, c = state
        z = self.conv(h if x is None else torch.cat([x, h], dim=1))
        if self.norm is not None:
            z = self.norm(z)
        z_i, z_f, z_o, z_g = torch.split(z, self.hidden_channels, dim=1)
        c = torch.sigmoid(z_f) * c + torch.sigmoid(z_i) * torch.tanh(z_g)
        h = torch.sigmoid(z_o) * torch.tanh(c)
        return h, c

    def zero_state(self, batch, height, width, like):
        shape = (batch, self.hidden_channels, height, width)
        return like.new_zeros(shape), like.new_zeros(shape)


class ZooEncoderForecaster(nn.Module):
    """The three-level conv/ConvLSTM encoder-forecaster ("zoo" layout)."""

    cell_type = ConvLSTMCell

    def __init__(self, input_frames=10, output_frames=10):
        super().__init__()
        self.output_frames = output_frames
        act = nn.LeakyReLU(ZOO_LEAKY_SLOPE)

        def conv(cin, cout, k, stride=1):
            return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), act)

        def deconv(cin, cout):
            return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), act)

        def cell(cin, hidden):
            return self.cell_type(cin, hidden, ZOO_KERNEL, group_norm=True)

        self.enc_conv1, self.enc_cell1 = conv(1, 16, 3), cell(16, 64)
        self.enc_conv2, self.enc_cell2 = conv(64, 64, 3, 2), cell(64, 96)
        self.enc_conv3, self.enc_cell3 = conv(96, 96, 3, 2), cell(96, 96)
        self.dec_cell3, self.dec_deconv3 = cell(0, 96), deconv(96, 96)
        self.dec_cell2, self.dec_deconv2 = cell(96, 96), deconv(96, 96)
        self.dec_cell1, self.dec_conv1 = cell(96, 64), conv(64, 16, 3)
        self.dec_out = nn.Conv2d(16, 1, 1)

    def forward(self, x):
        """x (B, T_in, 1, S, S) -> logits (B, T_out, 1, S, S)."""
        b, _, _, s, _ = x.shape
        s1 = self.enc_cell1.zero_state(b, s, s, x)
        s2 = self.enc_cell2.zero_state(b, s // 2, s // 2, x)
        s3 = self.enc_cell3.zero_state(b, s // 4, s // 4, x)
        for t in range(x.shape[1]):
            s1 = self.enc_cell1(self.enc_conv1(x[:, t]), s1)
            s2 = self.enc_cell2(self.enc_conv2(s1[0]), s2)
            s3 = self.enc_cell3(self.enc_conv3(s2[0]), s3)
        outputs = []
        for _ in range(self.output_frames):
            s3 = self.dec_cell3(None, s3)
            s2 = self.dec_cell2(self.dec_deconv3(s3[0]), s2)
            s1 = self.dec_cell1(self.dec_deconv2(s2[0]), s1)
            outputs.append(self.dec_out(self.dec_conv1(s1[0])))
        return torch.stack(outputs, dim=1)


class PaperEncoderForecaster(nn.Module):
    """Shi et al. (2015): patches, encoding and forecasting ConvLSTM stacks, 1x1 output conv."""

    cell_type = ConvLSTMCell

    def __init__(self, input_frames=10, output_frames=10, hidden_channels=(128, 64, 64), kernel_size=5,
                 patch_size=4, group_norm=False):
        super().__init__()
        self.output_frames = output_frames
        self.patch = patch_size
        widths = list(hidden_channels)
        depth = patch_size * patch_size
        enc_in = [depth] + widths[:-1]
        dec_in = [0] + widths[:-1]
        cell = self.cell_type
        self.encoder = nn.ModuleList(cell(i, h, kernel_size, group_norm) for i, h in zip(enc_in, widths))
        self.forecaster = nn.ModuleList(cell(i, h, kernel_size, group_norm) for i, h in zip(dec_in, widths))
        self.output_conv = nn.Conv2d(sum(widths), depth, 1)

    def forward(self, x):
        """x (B, T_in, 1, S, S) -> logits (B, T_out, 1, S, S)."""
        b, _, _, s, _ = x.shape
        side = s // self.patch
        states = [cell.zero_state(b, side, side, x) for cell in self.encoder]
        for t in range(x.shape[1]):
            y = nn.functional.pixel_unshuffle(x[:, t], self.patch)  # (B, p*p, S/p, S/p)
            for k, cell in enumerate(self.encoder):
                states[k] = cell(y, states[k])
                y = states[k][0]
        outputs = []
        for _ in range(self.output_frames):
            y = None
            for k, cell in enumerate(self.forecaster):
                states[k] = cell(y, states[k])
                y = states[k][0]
            z = self.output_conv(torch.cat([h for h, _ in states], dim=1))
            outputs.append(nn.functional.pixel_shuffle(z, self.patch))
        return torch.stack(outputs, dim=1)


# ----------------------------------------------------------------------------- layer-major layout

def _framewise(layer, x):
    """Apply a frame-wise layer to all frames at once. x (T, B, C, H, W) -> (T, B, C', H', W')."""
    t, b = x.shape[:2]
    y = layer(x.reshape((t * b,) + tuple(x.shape[2:])))  # (T*B, C', H', W')
    return y.reshape((t, b) + tuple(y.shape[1:]))


class SequenceConvLSTM(nn.Module):
    """A ConvLSTM layer over a whole time-major sequence: the input-to-state convolution of all
    frames is one batched convolution; the state-to-state convolution runs per step."""

    def __init__(self, input_channels, hidden_channels, kernel_size=5, group_norm=False):
        super().__init__()
        self.hidden_channels = hidden_channels
        gates = 4 * hidden_channels
        pad = kernel_size // 2
        bias = not group_norm
        # the bias lives on the input conv (or on the state conv of a cell without input)
        self.input_conv = nn.Conv2d(input_channels, gates, kernel_size, padding=pad, bias=bias) \
            if input_channels else None
        self.state_conv = nn.Conv2d(hidden_channels, gates, kernel_size, padding=pad,
                                    bias=bias and not input_channels)
        self.norm = nn.GroupNorm(num_groups(gates), gates) if group_norm else None

    def forward(self, x, state=None, steps=0):
        """x (T, B, C_in, H, W) or None; state (h, c) or None (zeros) -> (hs (T, B, C, H, W), (h, c))."""
        z_inputs = _framewise(self.input_conv, x).unbind(0) if x is not None else [None] * steps
        h, c = state if state is not None else (None, None)
        hs = []
        for z_in in z_inputs:
            z = z_in if h is None else (self.state_conv(h) if z_in is None else z_in + self.state_conv(h))
            if self.norm is not None:
                z = self.norm(z)
            z_i, z_f, z_o, z_g = torch.split(z, self.hidden_channels, dim=1)
            c_new = torch.sigmoid(z_i) * torch.tanh(z_g)
            c = c_new if c is None else c_new + torch.sigmoid(z_f) * c
            h = torch.sigmoid(z_o) * torch.tanh(c)
            hs.append(h)
        return torch.stack(hs), (h, c)


class ZooLayerMajor(ZooEncoderForecaster):
    """The zoo network, layer-major (same layers as ``ZooEncoderForecaster``)."""

    cell_type = SequenceConvLSTM

    def forward(self, x):
        """x (B, T_in, 1, S, S) -> logits (B, T_out, 1, S, S)."""
        y = x.transpose(0, 1)  # (T_in, B, 1, S, S)
        y, s1 = self.enc_cell1(_framewise(self.enc_conv1, y))  # (T_in, B, 64, S, S)
        y, s2 = self.enc_cell2(_framewise(self.enc_conv2, y))  # (T_in, B, 96, S/2, S/2)
        _, s3 = self.enc_cell3(_framewise(self.enc_conv3, y))
        y, _ = self.dec_cell3(None, s3, self.output_frames)  # (T_out, B, 96, S/4, S/4)
        y, _ = self.dec_cell2(_framewise(self.dec_deconv3, y), s2)  # (T_out, B, 96, S/2, S/2)
        y, _ = self.dec_cell1(_framewise(self.dec_deconv2, y), s1)  # (T_out, B, 64, S, S)
        y = _framewise(self.dec_out, _framewise(self.dec_conv1, y))  # (T_out, B, 1, S, S)
        return y.transpose(0, 1)


class PaperLayerMajor(PaperEncoderForecaster):
    """The paper network, layer-major (same layers as ``PaperEncoderForecaster``)."""

    cell_type = SequenceConvLSTM

    def forward(self, x):
        """x (B, T_in, 1, S, S) -> logits (B, T_out, 1, S, S)."""
        unshuffle = lambda frames: nn.functional.pixel_unshuffle(frames, self.patch)  # noqa: E731
        y = _framewise(unshuffle, x.transpose(0, 1))  # (T_in, B, p*p, S/p, S/p)
        states = []
        for cell in self.encoder:
            y, state = cell(y)
            states.append(state)
        y = None
        hiddens = []
        for cell, state in zip(self.forecaster, states):
            y, _ = cell(y, state, self.output_frames)  # (T_out, B, C_k, S/p, S/p)
            hiddens.append(y)
        z = _framewise(self.output_conv, torch.cat(hiddens, dim=2))  # (T_out, B, p*p, S/p, S/p)
        shuffle = lambda frames: nn.functional.pixel_shuffle(frames, self.patch)  # noqa: E731
        return _framewise(shuffle, z).transpose(0, 1)  # (B, T_out, 1, S, S)


LAYOUTS = ("frame", "layer")


def build_network(cfg, layout="frame"):
    """The PyTorch network matching ``src.models.encoder_forecaster.build_network(cfg)`` in ``layout``."""
    if cfg.peephole:
        raise ValueError("the PyTorch reference has no peepholes")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if cfg.arch == "zoo":
        zoo = ZooEncoderForecaster if layout == "frame" else ZooLayerMajor
        return zoo(cfg.input_frames, cfg.output_frames)
    paper = PaperEncoderForecaster if layout == "frame" else PaperLayerMajor
    return paper(cfg.input_frames, cfg.output_frames, cfg.hidden_channels, cfg.kernel_size,
                 cfg.patch_size, cfg.group_norm)


def copy_weights_frame_to_layer(frame_net, layer_net):
    """Load a frame-by-frame network's weights into the layer-major one (splitting each fused
    ``concat(x, h)`` kernel into its input and state parts), so both compute the same function."""
    frame_cells = [m for m in frame_net.modules() if isinstance(m, ConvLSTMCell)]
    layer_cells = [m for m in layer_net.modules() if isinstance(m, SequenceConvLSTM)]
    others_f = [m for m in frame_net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
                and not any(m is c.conv for c in frame_cells)]
    others_l = [m for m in layer_net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
                and not any(m is c.input_conv or m is c.state_conv for c in layer_cells)]
    with torch.no_grad():
        for f, l in zip(frame_cells, layer_cells):
            w = f.conv.weight  # (4C, C_in + C, k, k)
            cin = w.shape[1] - f.hidden_channels
            if l.input_conv is not None:
                l.input_conv.weight.copy_(w[:, :cin])
            l.state_conv.weight.copy_(w[:, cin:])
            if f.conv.bias is not None:
                (l.input_conv if l.input_conv is not None else l.state_conv).bias.copy_(f.conv.bias)
            if f.norm is not None:
                l.norm.load_state_dict(f.norm.state_dict())
        for f, l in zip(others_f, others_l):
            l.load_state_dict(f.state_dict())


def count_parameters(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def _autocast(dtype):
    """CPU autocast to ``dtype`` (e.g. torch.bfloat16), or a no-op context for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=dtype)


def build_train_step(cfg, net, autocast_dtype=None):
    """Adam + global-norm clipping + MSE of sigmoid(logits) (or BCE), like src/training/step.py.

    ``autocast_dtype`` (torch.bfloat16): the forward pass under ``torch.autocast("cpu")``, as a
    CPU user with bfloat16 matrix units would train; the loss is computed in float32."""
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def step(inputs, targets):
        optimizer.zero_grad(set_to_none=True)
        with _autocast(autocast_dtype):
            logits = net(inputs)
        logits = logits.float()
        if cfg.loss == "mse":
            loss = torch.mean(torch.square(torch.sigmoid(logits) - targets))
        else:
            loss = nn.functional.binary_cross_entropy_with_logits(logits, targets)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        optimizer.step()
        return loss.item()

    return step


def build_predict_fn(net, autocast_dtype=None):
    """Inference without autograd bookkeeping (optionally under CPU autocast)."""

    def predict(inputs):
        with torch.inference_mode(), _autocast(autocast_dtype):
            return torch.sigmoid(net(inputs).float())

    return predict
