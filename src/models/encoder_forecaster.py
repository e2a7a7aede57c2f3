"""Encoder-forecaster networks for next-frame prediction (``cfg.arch``: ``zoo`` or ``paper``).

Both networks map ``(B, T_in, C, H, W)`` frames in [0, 1] to ``(B, T_out, C, H, W)``
predictions in [0, 1] (``construct`` = sigmoid of ``forward_logits``): C channels in, the
same C channels out, H and W independent (Moving MNIST: C = 1, H = W = 64). The losses of
the training code use ``forward_logits``.

Internally everything runs time-major ``(T, B, C, H, W)`` and layer-major: each layer processes
all frames before the next starts, so frame-wise layers run as one convolution over ``T*B`` images
(the same function as frame by frame: no layer feeds back into a lower one; see ``convlstm_cell``).

``zoo`` (the layout of the published MindSpore port; GroupNorm in every cell, 5x5 cells,
LeakyReLU(0.2) after every convolution except the last)::

    encoder:    conv C->16 k3 | ConvLSTM 16->64 @HxW | conv 64->64 k3 s2 | ConvLSTM 64->96 @H/2xW/2
                | conv 96->96 k3 s2 | ConvLSTM 96->96 @H/4xW/4
    forecaster: ConvLSTM (no input)->96 @H/4xW/4 (state of encoder cell 3) | deconv 96->96 k4 s2
                | ConvLSTM 96->96 @H/2xW/2 (state of encoder cell 2) | deconv 96->96 k4 s2
                | ConvLSTM 96->64 @HxW (state of encoder cell 1) | conv 64->16 k3 | conv 16->C k1

``paper`` (Shi et al. 2015): p x p space-to-depth (C x H x W -> C*p^2 x H/p x W/p), an encoder
stack of ConvLSTMs with widths ``cfg.hidden_channels``, a forecaster stack of the same widths
whose states start from the encoder's last states (layer 1 has no input, layer k > 1 reads
layer k-1's hidden states), all forecaster hidden states concatenated -> 1x1 conv -> C*p^2
channels -> depth-to-space.

``paper`` with ``forecaster_input="prediction"``: forecaster layer 1 reads the previous frame
instead of nothing: the last observed frame at the first step, then the network's own
prediction (sigmoid output, gradient flowing through it). The frame to extend is then in
front of the forecaster at every step instead of only in its copied states. The forecaster
must run frame by frame (each step needs the previous step's output), so only the encoder
stays layer-major.
"""
from mindspore import nn, ops

from src.config import FORECASTER_INPUTS, frame_shape
from src.models.convlstm_cell import ConvLSTMCell, framewise

ZOO_KERNEL = 5
ZOO_CHANNELS = (16, 64, 96)  # widths of the three levels of the published zoo network
ZOO_LEAKY_SLOPE = 0.2


def _conv(cin, cout, kernel, stride=1):
    """A biased 'same'-padded convolution (output size = input size / stride)."""
    return nn.Conv2d(cin, cout, kernel, stride=stride, pad_mode="pad", padding=kernel // 2, has_bias=True)


def _set_bias(conv, value):
    """Start a layer's bias at ``value`` (see ``output_bias`` in the config)."""
    conv.bias.set_data(ops.full(conv.bias.shape, float(value), dtype=conv.bias.dtype))


def _deconv(cin, cout):
    """A biased k4 s2 p1 transposed convolution: doubles height and width."""
    return nn.Conv2dTranspose(cin, cout, 4, stride=2, pad_mode="pad", padding=1, has_bias=True)


def _concat(tensors, axis):
    """ops.cat, except for a single tensor (a one-layer stack): MindSpore's graph-mode backward of
    a one-piece concatenation logs a C++ warning (expander_fallback, abstract mismatch) to stderr."""
    return tensors[0] if len(tensors) == 1 else ops.cat(tensors, axis=axis)


def space_to_depth(x, patch):
    """(N, C, H, W) -> (N, C*p*p, H/p, W/p); channel index = c*p*p + dy*p + dx."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // patch, patch, w // patch, patch)  # (N, C, H/p, dy, W/p, dx)
    x = x.transpose(0, 1, 3, 5, 2, 4)  # (N, C, dy, dx, H/p, W/p)
    return x.reshape(n, c * patch * patch, h // patch, w // patch)


def depth_to_space(x, patch):
    """Inverse of ``space_to_depth``: (N, C*p*p, h, w) -> (N, C, h*p, w*p)."""
    n, cpp, h, w = x.shape
    c = cpp // (patch * patch)
    x = x.reshape(n, c, patch, patch, h, w)  # (N, C, dy, dx, h, w)
    x = x.transpose(0, 1, 4, 2, 5, 3)  # (N, C, h, dy, w, dx)
    return x.reshape(n, c, h * patch, w * patch)


class _SequenceNet(nn.Cell):
    """Shared input/output handling: batch-major frames outside, time-major inside."""

    def __init__(self, input_frames, output_frames):
        super().__init__()
        self.input_frames = int(input_frames)
        self.output_frames = int(output_frames)

    def forward_logits(self, x):
        """x (B, T_in, C, H, W) float32 in [0, 1] -> logits (B, T_out, C, H, W)."""
        logits = self.forward_time_major(x.transpose(1, 0, 2, 3, 4))  # (T_out, B, C, H, W)
        return logits.transpose(1, 0, 2, 3, 4)

    def construct(self, x):
        return ops.sigmoid(self.forward_logits(x))


def _frame_size(image_size, frame_size):
    """(H, W): ``frame_size`` when given, else square ``image_size`` frames."""
    if frame_size is None:
        return int(image_size), int(image_size)
    height, width = frame_size
    return int(height), int(width)


class ZooEncoderForecaster(_SequenceNet):
    """The three-level conv/ConvLSTM encoder-forecaster of the published port (see module doc).

    ``frame_channels`` C and ``frame_size`` (H, W) (default: square ``image_size``) describe the
    frames; H and W must be multiples of 4. ``channels``: the widths of the three levels."""

    def __init__(self, input_frames=10, output_frames=10, image_size=64, peephole=False, forget_bias=1.0,
                 output_bias=0.0, channels=ZOO_CHANNELS, frame_channels=1, frame_size=None):
        super().__init__(input_frames, output_frames)
        height, width = _frame_size(image_size, frame_size)
        sizes = [(height, width), (height // 2, width // 2), (height // 4, width // 4)]
        c1, c2, c3 = channels  # the published network: 16, 64, 96 (narrower only to test the code path fast)

        def cell(cin, hidden, level):
            return ConvLSTMCell(cin, hidden, ZOO_KERNEL, sizes[level], peephole=peephole, group_norm=True,
                                forget_bias=forget_bias)

        self.act = nn.LeakyReLU(ZOO_LEAKY_SLOPE)
        # encoder
        self.enc_conv1 = _conv(frame_channels, c1, 3)
        self.enc_cell1 = cell(c1, c2, 0)
        self.enc_conv2 = _conv(c2, c2, 3, stride=2)
        self.enc_cell2 = cell(c2, c3, 1)
        self.enc_conv3 = _conv(c3, c3, 3, stride=2)
        self.enc_cell3 = cell(c3, c3, 2)
        # forecaster
        self.dec_cell3 = cell(0, c3, 2)
        self.dec_deconv3 = _deconv(c3, c3)
        self.dec_cell2 = cell(c3, c3, 1)
        self.dec_deconv2 = _deconv(c3, c3)
        self.dec_cell1 = cell(c3, c2, 0)
        self.dec_conv1 = _conv(c2, c1, 3)
        self.dec_out = _conv(c1, frame_channels, 1)
        _set_bias(self.dec_out, output_bias)

    def _framewise_act(self, layer, x):
        return self.act(framewise(layer, x))

    def forward_time_major(self, x):
        """x (T_in, B, C, H, W) -> logits (T_out, B, C, H, W)."""
        y = self._framewise_act(self.enc_conv1, x)  # (T_in, B, 16, H, W)
        y, state1 = self.enc_cell1(y)  # (T_in, B, 64, H, W)
        y = self._framewise_act(self.enc_conv2, y)  # (T_in, B, 64, H/2, W/2)
        y, state2 = self.enc_cell2(y)  # (T_in, B, 96, H/2, W/2)
        y = self._framewise_act(self.enc_conv3, y)  # (T_in, B, 96, H/4, W/4)
        _, state3 = self.enc_cell3(y)

        y, _ = self.dec_cell3(None, state3, self.output_frames)  # (T_out, B, 96, H/4, W/4)
        y = self._framewise_act(self.dec_deconv3, y)  # (T_out, B, 96, H/2, W/2)
        y, _ = self.dec_cell2(y, state2)
        y = self._framewise_act(self.dec_deconv2, y)  # (T_out, B, 96, H, W)
        y, _ = self.dec_cell1(y, state1)  # (T_out, B, 64, H, W)
        y = self._framewise_act(self.dec_conv1, y)  # (T_out, B, 16, H, W)
        return framewise(self.dec_out, y)  # (T_out, B, C, H, W)


class PaperEncoderForecaster(_SequenceNet):
    """Shi et al. (2015) encoding/forecasting ConvLSTM stacks on p x p patches (see module doc).

    ``frame_channels`` C and ``frame_size`` (H, W) (default: square ``image_size``) describe the
    frames; H and W must be multiples of ``patch_size``."""

    def __init__(self, input_frames=10, output_frames=10, image_size=64, hidden_channels=(128, 64, 64),
                 kernel_size=5, patch_size=4, peephole=False, group_norm=False, forget_bias=1.0, output_bias=0.0,
                 forecaster_input="none", frame_channels=1, frame_size=None):
        super().__init__(input_frames, output_frames)
        if forecaster_input not in FORECASTER_INPUTS:
            raise ValueError(f"forecaster_input must be one of {', '.join(FORECASTER_INPUTS)}, "
                             f"got {forecaster_input!r}")
        self.feed_predictions = forecaster_input == "prediction"
        self.patch_size = int(patch_size)
        height, width = _frame_size(image_size, frame_size)
        state_size = (height // patch_size, width // patch_size)
        depth = int(frame_channels) * patch_size * patch_size
        widths = [int(c) for c in hidden_channels]
        self.num_layers = len(widths)

        def cell(cin, hidden):
            return ConvLSTMCell(cin, hidden, kernel_size, state_size, peephole=peephole, group_norm=group_norm,
                                forget_bias=forget_bias)

        enc_inputs = [depth] + widths[:-1]
        dec_inputs = [depth if self.feed_predictions else 0] + widths[:-1]
        self.encoder = nn.CellList([cell(cin, hid) for cin, hid in zip(enc_inputs, widths)])
        self.forecaster = nn.CellList([cell(cin, hid) for cin, hid in zip(dec_inputs, widths)])
        self.output_conv = _conv(sum(widths), depth, 1)
        _set_bias(self.output_conv, output_bias)

    def forward_time_major(self, x):
        """x (T_in, B, C, H, W) -> logits (T_out, B, C, H, W)."""
        patches = framewise(self._to_patches, x)  # (T_in, B, C*p*p, H/p, W/p)
        y = patches
        states = []
        for k in range(self.num_layers):
            y, state = self.encoder[k](y)  # (T_in, B, C_k, H/p, W/p)
            states.append(state)
        if self.feed_predictions:
            # a positive index: MindSpore's ONNX exporter writes patches[-1] as an empty slice
            y = self._forecast_from_predictions(patches[self.input_frames - 1], states)  # (T_out, B, C*p*p, H/p, W/p)
        else:
            y = self._forecast_from_states(states)  # (T_out, B, C*p*p, H/p, W/p)
        return framewise(self._from_patches, y)  # (T_out, B, C, H, W)

    def _forecast_from_states(self, states):
        """The paper's forecaster, layer-major: layer 1 runs from its state alone.
        Returns logits as patches (T_out, B, C*p*p, H/p, W/p)."""
        y, _ = self.forecaster[0](None, states[0], self.output_frames)  # (T_out, B, C_1, H/p, W/p)
        hiddens = [y]
        for k in range(1, self.num_layers):
            y, _ = self.forecaster[k](y, states[k])
            hiddens.append(y)
        y = _concat(hiddens, axis=2)  # (T_out, B, sum C_k, H/p, W/p)
        return framewise(self.output_conv, y)  # (T_out, B, C*p*p, H/p, W/p)

    def _forecast_from_predictions(self, last_patches, states):
        """Frame-by-frame forecaster whose layer 1 reads the previous frame (the last observed
        one, then its own predictions). last_patches (B, C*p*p, H/p, W/p) are the last encoder
        input; states: the encoder's last (h, c) per layer. Returns logits (T_out, B, C*p*p, H/p, W/p)."""
        frame = last_patches  # (B, C*p*p, H/p, W/p)
        hs = [h for h, _ in states]
        cs = [c for _, c in states]
        logits = ()  # a tuple: the ONNX exporter has no make_list
        for _ in range(self.output_frames):
            y = frame
            for k in range(self.num_layers):
                cell = self.forecaster[k]
                hs[k], cs[k] = cell.step(cell.frame_input_to_state(y), hs[k], cs[k])  # (B, C_k, H/p, W/p)
                y = hs[k]
            logit = self.output_conv(_concat(hs, axis=1))  # (B, C*p*p, H/p, W/p)
            logits = logits + (logit,)
            frame = ops.sigmoid(logit)
        return ops.stack(logits, axis=0)  # (T_out, B, C*p*p, H/p, W/p)

    def _to_patches(self, x):
        return space_to_depth(x, self.patch_size)

    def _from_patches(self, x):
        return depth_to_space(x, self.patch_size)


def build_network(cfg):
    """The network selected by ``cfg.arch``, sized by the config (frames, frame shape, widths)."""
    channels, height, width = frame_shape(cfg)
    if cfg.arch == "zoo":
        return ZooEncoderForecaster(cfg.input_frames, cfg.output_frames, peephole=cfg.peephole,
                                    forget_bias=cfg.forget_bias, output_bias=cfg.output_bias,
                                    frame_channels=channels, frame_size=(height, width))
    if cfg.arch == "paper":
        return PaperEncoderForecaster(cfg.input_frames, cfg.output_frames, hidden_channels=cfg.hidden_channels,
                                      kernel_size=cfg.kernel_size, patch_size=cfg.patch_size, peephole=cfg.peephole,
                                      group_norm=cfg.group_norm, forget_bias=cfg.forget_bias,
                                      output_bias=cfg.output_bias, forecaster_input=cfg.forecaster_input,
                                      frame_channels=channels, frame_size=(height, width))
    raise ValueError(f"unknown arch {cfg.arch!r}")
