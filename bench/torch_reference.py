"""PyTorch CPU reference of both networks, for speed comparison only (bench/bench_step.py).

Written the way a PyTorch user typically writes a ConvLSTM: **frame by frame**. Every
ConvLSTM step runs ONE convolution over ``concat(x_t, h)`` giving the 4C gate
pre-activations; the frame-wise convolutions of the zoo network run once per frame.
The layer specifications are the same as ``src/models`` (see ``encoder_forecaster``):
same channels, kernels, strides, GroupNorm groups, LeakyReLU(0.2), patching, and the
same parameter counts (checked by ``count_parameters`` against ``src.models.flops``).
Peepholes are not implemented (the benchmarked configurations do not use them).

The project does not depend on PyTorch; only the benchmark imports this file.
"""
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

    def __init__(self, input_frames=10, output_frames=10):
        super().__init__()
        self.output_frames = output_frames
        act = nn.LeakyReLU(ZOO_LEAKY_SLOPE)

        def conv(cin, cout, k, stride=1):
            return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2), act)

        def deconv(cin, cout):
            return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, 2, 1), act)

        def cell(cin, hidden):
            return ConvLSTMCell(cin, hidden, ZOO_KERNEL, group_norm=True)

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

    def __init__(self, input_frames=10, output_frames=10, hidden_channels=(128, 64, 64), kernel_size=5,
                 patch_size=4, group_norm=False):
        super().__init__()
        self.output_frames = output_frames
        self.patch = patch_size
        widths = list(hidden_channels)
        depth = patch_size * patch_size
        enc_in = [depth] + widths[:-1]
        dec_in = [0] + widths[:-1]
        self.encoder = nn.ModuleList(ConvLSTMCell(i, h, kernel_size, group_norm) for i, h in zip(enc_in, widths))
        self.forecaster = nn.ModuleList(ConvLSTMCell(i, h, kernel_size, group_norm) for i, h in zip(dec_in, widths))
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


def build_network(cfg):
    """The PyTorch network matching ``src.models.encoder_forecaster.build_network(cfg)``."""
    if cfg.peephole:
        raise ValueError("the PyTorch reference has no peepholes")
    if cfg.arch == "zoo":
        return ZooEncoderForecaster(cfg.input_frames, cfg.output_frames)
    return PaperEncoderForecaster(cfg.input_frames, cfg.output_frames, cfg.hidden_channels, cfg.kernel_size,
                                  cfg.patch_size, cfg.group_norm)


def count_parameters(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def build_train_step(cfg, net):
    """Adam + global-norm clipping + MSE of sigmoid(logits) (or BCE), like src/training/step.py."""
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def step(inputs, targets):
        optimizer.zero_grad(set_to_none=True)
        logits = net(inputs)
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


def build_predict_fn(net):
    """Inference without autograd bookkeeping."""

    def predict(inputs):
        with torch.inference_mode():
            return torch.sigmoid(net(inputs))

    return predict
