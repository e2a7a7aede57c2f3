"""Encoder-forecaster networks for next-frame prediction (``cfg.arch``: ``zoo`` or ``paper``).

``(B, T_in, C, H, W)`` in [0, 1] -> ``(B, T_out, C_out, H, W)`` (sigmoid of ``forward_logits``; C_out = C, or
fewer with ``output_channels``: the config's target_channels), time-major inside. ``zoo``: the published port's
three conv / ConvLSTM levels; ``paper`` (Shi et al. 2015): ConvLSTM stacks on p x p patches, hidden states
concatenated into a 1x1 conv. ``forecaster_input="prediction"``: forecaster layer 1 reads the previous frame (last
observed, then its own prediction), frame by frame.
"""
import functools

from mindspore import nn, ops

from src.config import FORECASTER_INPUTS
from src.models.convlstm_cell import ConvLSTMCell, framewise, same_conv

ZOO_KERNEL = 5
ZOO_CHANNELS = (16, 64, 96)  # widths of the three levels of the published zoo network
ZOO_LEAKY_SLOPE = 0.2


def _set_bias(conv, value):
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
    """Batch-major frames outside, time-major inside; frames of ``frame_size`` or square ``image_size``.
    ``output_activation``: sigmoid (the losses work on logits) or linear (the raw output is the frame, clipped to
    [0, 1] when read out); ``residual`` (linear only): the output is a change added to the latest frame read."""

    def __init__(self, input_frames, output_frames, image_size, frame_size, output_activation="sigmoid",
                 residual=False):
        super().__init__()
        if output_activation not in ("sigmoid", "linear"):
            raise ValueError(f"output_activation must be sigmoid or linear, got {output_activation!r}")
        if residual and output_activation != "linear":
            raise ValueError("residual needs output_activation linear")
        self.input_frames = int(input_frames)
        self.output_frames = int(output_frames)
        self.linear_output = output_activation == "linear"
        self.residual = bool(residual)
        height, width = frame_size or (image_size, image_size)
        self.frame_size = (int(height), int(width))

    def to_frame(self, logit):
        """What the network feeds back and shows: sigmoid(logit) or, linear, the raw output."""
        return logit if self.linear_output else ops.sigmoid(logit)

    def forward_logits(self, x):
        """x (B, T_in, C, H, W) float32 in [0, 1] -> logits (B, T_out, C_out, H, W) (C_out: target_channels)."""
        logits = self.forward_time_major(x.transpose(1, 0, 2, 3, 4))  # (T_out, B, C_out, H, W)
        return logits.transpose(1, 0, 2, 3, 4)

    def construct(self, x):
        logits = self.forward_logits(x)  # (B, T_out, C, H, W)
        return ops.clip_by_value(logits, 0.0, 1.0) if self.linear_output else ops.sigmoid(logits)


class ZooEncoderForecaster(_SequenceNet):
    """The three-level network of the published port (frame height and width multiples of 4)."""

    def __init__(self, input_frames=10, output_frames=10, image_size=64, peephole=False, forget_bias=1.0,
                 output_bias=0.0, channels=ZOO_CHANNELS, frame_channels=1, frame_size=None, output_channels=None):
        super().__init__(input_frames, output_frames, image_size, frame_size)
        output_channels = frame_channels if output_channels is None else output_channels  # target_channels
        height, width = self.frame_size
        full, half, quarter = (height, width), (height // 2, width // 2), (height // 4, width // 4)
        c1, c2, c3 = channels  # narrower than 16, 64, 96 only to test the code path fast
        cell = functools.partial(ConvLSTMCell, kernel_size=ZOO_KERNEL, peephole=peephole, group_norm=True,
                                 forget_bias=forget_bias)
        self.act = nn.LeakyReLU(ZOO_LEAKY_SLOPE)
        # encoder
        self.enc_conv1 = same_conv(frame_channels, c1, 3)
        self.enc_cell1 = cell(c1, c2, spatial_size=full)
        self.enc_conv2 = same_conv(c2, c2, 3, stride=2)
        self.enc_cell2 = cell(c2, c3, spatial_size=half)
        self.enc_conv3 = same_conv(c3, c3, 3, stride=2)
        self.enc_cell3 = cell(c3, c3, spatial_size=quarter)
        # forecaster
        self.dec_cell3 = cell(0, c3, spatial_size=quarter)
        self.dec_deconv3 = _deconv(c3, c3)
        self.dec_cell2 = cell(c3, c3, spatial_size=half)
        self.dec_deconv2 = _deconv(c3, c3)
        self.dec_cell1 = cell(c3, c2, spatial_size=full)
        self.dec_conv1 = same_conv(c2, c1, 3)
        self.dec_out = same_conv(c1, output_channels, 1)
        _set_bias(self.dec_out, output_bias)

    def _framewise_act(self, layer, x):
        return self.act(framewise(layer, x))

    def forward_time_major(self, x):
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
        return framewise(self.dec_out, y)  # (T_out, B, C_out, H, W)


class PaperEncoderForecaster(_SequenceNet):
    """Shi et al. (2015) ConvLSTM stacks on p x p patches (frame height and width multiples of p)."""

    def __init__(self, input_frames=10, output_frames=10, image_size=64, hidden_channels=(128, 64, 64),
                 kernel_size=5, patch_size=4, peephole=False, group_norm=False, forget_bias=1.0, output_bias=0.0,
                 forecaster_input="none", frame_channels=1, frame_size=None, output_channels=None,
                 output_activation="sigmoid", residual=False):
        super().__init__(input_frames, output_frames, image_size, frame_size, output_activation, residual)
        output_channels = frame_channels if output_channels is None else output_channels  # target_channels
        if forecaster_input == "prediction" and output_channels != frame_channels:
            raise ValueError(f"forecaster_input prediction reads its predictions back as input frames: "
                             f"output_channels must be frame_channels ({frame_channels}), got {output_channels}")
        if residual and output_channels != frame_channels:
            raise ValueError(f"residual adds the change to the last frame: output_channels must be frame_channels "
                             f"({frame_channels}), got {output_channels}")
        if forecaster_input not in FORECASTER_INPUTS:
            raise ValueError(f"forecaster_input must be one of {', '.join(FORECASTER_INPUTS)}, "
                             f"got {forecaster_input!r}")
        if residual and forecaster_input != "none":
            raise ValueError("residual needs forecaster_input none")
        self.feed_predictions = forecaster_input == "prediction"
        self.patch_size = int(patch_size)
        height, width = self.frame_size
        state_size = (height // patch_size, width // patch_size)
        depth = int(frame_channels) * patch_size * patch_size
        widths = [int(c) for c in hidden_channels]
        self.num_layers = len(widths)
        cell = functools.partial(ConvLSTMCell, kernel_size=kernel_size, spatial_size=state_size,
                                 peephole=peephole, group_norm=group_norm, forget_bias=forget_bias)
        enc_inputs = [depth] + widths[:-1]
        dec_inputs = [depth if self.feed_predictions else 0] + widths[:-1]
        self.encoder = nn.CellList([cell(cin, hid) for cin, hid in zip(enc_inputs, widths)])
        self.forecaster = nn.CellList([cell(cin, hid) for cin, hid in zip(dec_inputs, widths)])
        self.output_conv = same_conv(sum(widths), int(output_channels) * patch_size * patch_size, 1)
        _set_bias(self.output_conv, output_bias)

    def _encode_and_forecast(self, x):
        """x (T_in, B, C, H, W) -> (encoder hidden states per layer, forecast logits as patches)."""
        patches = framewise(space_to_depth, x, self.patch_size)  # (T_in, B, C*p*p, H/p, W/p)
        y = patches
        states, hiddens = [], []
        for k in range(self.num_layers):
            y, state = self.encoder[k](y)  # (T_in, B, C_k, H/p, W/p)
            states.append(state)
            hiddens.append(y)
        # a positive index: MindSpore's ONNX exporter writes patches[-1] as an empty slice
        last = patches[self.input_frames - 1]  # (B, C*p*p, H/p, W/p)
        if self.feed_predictions:
            y = self._forecast_from_predictions(last, states)  # (T_out, B, C*p*p, H/p, W/p)
        else:
            y = self._forecast_from_states(states)  # (T_out, B, C_out*p*p, H/p, W/p)
        if self.residual:
            y = y + last.expand_dims(0)  # every forecast frame = the last observed one + its change
        return hiddens, patches, y

    def forward_time_major(self, x):
        _, _, y = self._encode_and_forecast(x)
        return framewise(depth_to_space, y, self.patch_size)  # (T_out, B, C_out, H, W)

    def forward_train(self, inputs, targets, mask, all_frames=True):
        """Training logits (B, T', C_out, H, W): with ``all_frames`` the encoder's steps 1 .. T_in-1 predict their
        next frame too, through the same output convolution (T' = T_in - 1 + T_out), else the T_out forecast
        frames. ``targets`` and ``mask`` are not read: the paper network reads no true frame after the inputs."""
        hiddens, patches, y = self._encode_and_forecast(inputs.transpose(1, 0, 2, 3, 4))  # y: (T_out, B, Cop2, h, w)
        if all_frames:
            observed = framewise(self.output_conv, _concat(hiddens, axis=2))  # (T_in, B, C_out*p*p, h, w)
            if self.residual:
                observed = observed + patches  # step t predicts frame t+1 as frame t + a change
            y = ops.cat([observed[:self.input_frames - 1], y], axis=0)  # (T_in - 1 + T_out, B, C_out*p*p, h, w)
        y = framewise(depth_to_space, y, self.patch_size)
        return y.transpose(1, 0, 2, 3, 4)  # (B, T', C_out, H, W)

    def _forecast_from_states(self, states):
        """The paper's forecaster, layer-major -> logits as patches (T_out, B, C_out*p*p, H/p, W/p)."""
        y, _ = self.forecaster[0](None, states[0], self.output_frames)  # (T_out, B, C_1, H/p, W/p)
        hiddens = [y]
        for k in range(1, self.num_layers):
            y, _ = self.forecaster[k](y, states[k])
            hiddens.append(y)
        y = _concat(hiddens, axis=2)  # (T_out, B, sum C_k, H/p, W/p)
        return framewise(self.output_conv, y)  # (T_out, B, C_out*p*p, H/p, W/p)

    def _forecast_from_predictions(self, frame, states):
        """Frame by frame, layer 1 reading the previous ``frame`` (B, C*p*p, H/p, W/p) -> logits."""
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
            frame = self.to_frame(logit)
        return ops.stack(logits, axis=0)  # (T_out, B, C*p*p, H/p, W/p)
