"""OpenSTL's next-frame ConvLSTM (Tan et al. 2023, its ConvLSTM model; Shi et al. 2015's cell): ONE stack of
ConvLSTM layers on p x p patches runs every step t = 0 .. T-2 of a T-frame sequence and predicts frame t+1
with a 1x1 convolution of the top hidden state.

What the stack reads at step t: frame t while t < T_in (observed); afterwards its own previous prediction.
In training, ``mask`` mixes true frames in (scheduled sampling, ``src/training/sampling.py``): the input of
step t >= 1 is ``m * true(t) + (1 - m) * prediction(t)`` with ``m = mask[:, t - 1]``, the prediction not
detached (as OpenSTL). The inference mask (ones on observed steps, zeros after) gives the inference output
exactly, without reading the targets.

``output_activation``: sigmoid (this repository's losses on logits) or linear (OpenSTL: the raw output is the
frame; ``construct`` clips it to [0, 1]); ``residual``: the output is a change added to the frame of the step.
"""
import functools

from mindspore import nn, ops

from src.models.convlstm_cell import ConvLSTMCell, framewise, same_conv
from src.models.encoder_forecaster import _SequenceNet, _set_bias, depth_to_space, space_to_depth


class StackedConvLSTM(_SequenceNet):
    """(B, T_in, C, H, W) -> (B, T_out, C, H, W); frame height and width multiples of ``patch_size``."""

    def __init__(self, input_frames=10, output_frames=10, image_size=64, hidden_channels=(128, 128, 128, 128),
                 kernel_size=5, patch_size=4, peephole=False, group_norm=False, forget_bias=0.0, output_bias=0.0,
                 output_activation="sigmoid", frame_channels=1, frame_size=None, residual=False):
        super().__init__(input_frames, output_frames, image_size, frame_size, output_activation, residual)
        self.patch_size = int(patch_size)
        height, width = self.frame_size
        self.state_size = (height // self.patch_size, width // self.patch_size)
        self.depth = int(frame_channels) * self.patch_size * self.patch_size
        self.widths = [int(c) for c in hidden_channels]
        self.num_layers = len(self.widths)
        cell = functools.partial(ConvLSTMCell, kernel_size=kernel_size, spatial_size=self.state_size,
                                 peephole=peephole, group_norm=group_norm, forget_bias=forget_bias)
        inputs = [self.depth] + self.widths[:-1]
        self.layers = nn.CellList([cell(cin, hid) for cin, hid in zip(inputs, self.widths)])
        self.output_conv = same_conv(self.widths[-1], self.depth, 1)
        _set_bias(self.output_conv, output_bias)

    def _step(self, frame, hs=None, cs=None):
        """One step of the stack on ``frame`` (B, C*p*p, h, w) -> (the next frame's logit, same shape; hs; cs).
        Without states (the first step) the cells start from zeros and skip their state convolution."""
        new_hs, new_cs = [], []
        y = frame
        for k in range(self.num_layers):
            cell = self.layers[k]
            h, c = (None, None) if hs is None else (hs[k], cs[k])
            h, c = cell.step(cell.frame_input_to_state(y), h, c)  # (B, C_k, h, w)
            new_hs.append(h)
            new_cs.append(c)
            y = h
        out = self.output_conv(y)  # (B, C*p*p, h, w)
        return (frame + out if self.residual else out), new_hs, new_cs

    def forward_time_major(self, x):
        """Inference: x (T_in, B, C, H, W) -> logits of the T_out predicted frames (T_out, B, C, H, W)."""
        patches = framewise(space_to_depth, x, self.patch_size)  # (T_in, B, C*p*p, h, w)
        frames = ops.split(patches, 1, axis=0)  # T_in x (1, B, C*p*p, h, w)
        hs = cs = None
        logits = ()  # a tuple: the ONNX exporter has no make_list
        frame = frames[0].squeeze(0)
        for t in range(self.input_frames + self.output_frames - 1):
            logit, hs, cs = self._step(frame, hs, cs)  # predicts frame t+1
            if t >= self.input_frames - 1:
                logits = logits + (logit,)
            frame = frames[t + 1].squeeze(0) if t + 1 < self.input_frames else self.to_frame(logit)
        y = ops.stack(logits, axis=0)  # (T_out, B, C*p*p, h, w)
        return framewise(depth_to_space, y, self.patch_size)  # (T_out, B, C, H, W)

    def forward_train(self, inputs, targets, mask, all_frames=True):
        """Training: inputs (B, T_in, C, H, W), targets (B, T_out, C, H, W), mask (B, T-2) ->
        logits of frames 1 .. T-1 (B, T-1, C, H, W), or of the T_out predicted ones without ``all_frames``."""
        truth = ops.cat([inputs, targets], axis=1).transpose(1, 0, 2, 3, 4)  # (T, B, C, H, W)
        patches = ops.split(framewise(space_to_depth, truth, self.patch_size), 1, axis=0)  # T x (1, B, Cpp, h, w)
        batch = inputs.shape[0]
        weights = ops.split(mask.transpose(1, 0).reshape(mask.shape[1], batch, 1, 1, 1), 1, axis=0)  # T-2 x (1,B,1,1,1)
        hs = cs = None
        total = self.input_frames + self.output_frames
        first = 0 if all_frames else self.input_frames - 1
        logits = ()
        frame = patches[0].squeeze(0)  # (B, C*p*p, h, w)
        for t in range(total - 1):
            logit, hs, cs = self._step(frame, hs, cs)  # predicts frame t+1
            if t >= first:
                logits = logits + (logit,)
            if t + 1 < total - 1:
                m = weights[t].squeeze(0)  # (B, 1, 1, 1)
                frame = m * patches[t + 1].squeeze(0) + (1 - m) * self.to_frame(logit)
        y = framewise(depth_to_space, ops.stack(logits, axis=0), self.patch_size)  # (T', B, C, H, W)
        return y.transpose(1, 0, 2, 3, 4)  # (B, T', C, H, W)
