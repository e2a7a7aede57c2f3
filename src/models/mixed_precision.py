"""Mixed precision of the training forward pass (``amp_level``): frames -> float32 logits. Not
``mindspore.amp.auto_mixed_precision`` (its O2/O3 wrapper hides ``forward_logits``, its O1 rewrites the
source): ``Cell.to_float`` on sub-cells, parameters stay float32 (so are checkpoints and exports). O1:
convolutions in float16, returning float32; O2: all float16 but GroupNorm (``mindspore.amp``'s black
list); O3: all float16. Losses always run on float32 logits."""
import mindspore as ms
from mindspore import nn, ops

AMP_LEVELS = ("O0", "O1", "O2", "O3")
FLOAT16_CONVOLUTIONS = (nn.Conv2d, nn.Conv2dTranspose)  # O1: mindspore.amp white-list cells in these networks
FLOAT32_NORMS = (nn.GroupNorm,)  # O2: kept float32


class _Logits(nn.Cell):
    """``construct(x)`` = the wrapped network's ``forward_logits``; ``construct(x, targets, mask)`` its
    ``forward_train`` (the frames of the loss, ``all_frames`` or the output frames; a network without
    ``forward_train`` reads only ``x``). Adds no parameter-name prefix."""

    def __init__(self, net, all_frames=False):
        super().__init__(auto_prefix=False)
        self.net = net
        self.all_frames = bool(all_frames)
        self.has_train_forward = hasattr(net, "forward_train")

    def construct(self, x, targets=None, mask=None):
        if targets is None or not self.has_train_forward:
            return self.net.forward_logits(x)  # (B, T_out, C, H, W)
        return self.net.forward_train(x, targets, mask, self.all_frames)  # (B, T', C, H, W)


class _CastOutput(nn.Cell):
    """Runs ``cell`` and casts its output to ``dtype``; adds no parameter-name prefix."""

    def __init__(self, cell, dtype):
        super().__init__(auto_prefix=False)
        self.cell = cell
        self.dtype = dtype

    def construct(self, *args):
        return ops.cast(self.cell(*args), self.dtype)


class PredictedFrames(nn.Cell):
    """Frames of a ``training_forward`` cell (sigmoid of its logits, or clipped with a ``linear`` output):
    validation runs in the training precision."""

    def __init__(self, logits_cell, linear_output=False):
        super().__init__(auto_prefix=False)
        self.logits_cell = logits_cell
        self.linear_output = bool(linear_output)

    def construct(self, x):
        logits = self.logits_cell(x)  # (B, T_out, C, H, W)
        return ops.clip_by_value(logits, 0.0, 1.0) if self.linear_output else ops.sigmoid(logits)


def _wrap_sub_cells(cell, types, compute_dtype, output_dtype):
    """Make each sub-cell of ``types`` (any depth) compute in ``compute_dtype``, return ``output_dtype``."""
    cells = cell._cells  # pylint: disable=protected-access
    for name, sub in list(cell.name_cells().items()):
        if isinstance(sub, types):
            cells[name] = _CastOutput(sub.to_float(compute_dtype), output_dtype)
        else:
            _wrap_sub_cells(sub, types, compute_dtype, output_dtype)


def training_forward(net, amp_level="O0", dtype=ms.float16, all_frames=False):
    """float32 frames -> float32 logits at ``amp_level`` (see ``_Logits`` for the calls and ``all_frames``);
    modifies ``net``'s sub-cells in place for O1/O2/O3 (call once per network), leaving parameter names,
    shapes and dtypes as they are."""
    if amp_level not in AMP_LEVELS:
        raise ValueError(f"amp_level must be one of {', '.join(AMP_LEVELS)}, got {amp_level!r}")
    forward = _Logits(net, all_frames)
    if amp_level == "O1":
        _wrap_sub_cells(forward, FLOAT16_CONVOLUTIONS, dtype, ms.float32)
    if amp_level in ("O0", "O1"):
        return forward
    forward.to_float(dtype)
    if amp_level == "O2":
        _wrap_sub_cells(forward, FLOAT32_NORMS, ms.float32, dtype)
    return _CastOutput(forward, ms.float32)
