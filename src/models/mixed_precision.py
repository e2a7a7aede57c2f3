"""Mixed precision of the training forward pass (``amp_level`` O0/O1/O2/O3).

``training_forward(net, amp_level)`` returns the cell a training step calls: it maps frames
``(B, T_in, C, H, W)`` float32 to float32 logits ``(B, T_out, C, H, W)``, i.e. the network's
``forward_logits``, with the precision of the level applied to the layers inside. The losses,
the SSIM term, the sigmoid and the binary cross-entropy are computed by the caller on those
float32 logits, so they always run in float32.

Why not ``mindspore.amp.auto_mixed_precision(net, level)`` on the network itself: for O2/O3 it
returns a wrapper that exposes only ``construct`` (the sigmoid output), so a loss on
``forward_logits`` cannot reach the wrapped network; for O1 it rewrites the network's source
into a ``rewritten_network/`` folder of the working directory. Here the logits view is a cell
of its own, and the levels are applied with ``Cell.to_float`` on sub-cells, the mechanism
MindSpore's O2/O3 use internally. Parameters stay float32 (casts happen at each operator), so
checkpoints and exports are float32 whatever the level.

Levels (float16 = ``dtype``):

* O0: everything float32.
* O1: the white list of ``mindspore.amp`` that this network contains, ``nn.Conv2d`` and
  ``nn.Conv2dTranspose`` (all input-to-state, state-to-state, frame-wise and output
  convolutions), computes in float16; each returns float32, so gates, cell states, GroupNorm
  and the output stay float32.
* O2: the whole network in float16 except GroupNorm, whose statistics and affine transform run
  in float32 (``mindspore.amp``'s O2 keeps its normalisation black list in float32 the same
  way); the logits are cast back to float32.
* O3: the whole network in float16, GroupNorm included; the logits are cast back to float32.
"""
import mindspore as ms
from mindspore import nn, ops

AMP_LEVELS = ("O0", "O1", "O2", "O3")
FLOAT16_CONVOLUTIONS = (nn.Conv2d, nn.Conv2dTranspose)  # O1: mindspore.amp white-list cells in these networks
FLOAT32_NORMS = (nn.GroupNorm,)  # O2: kept float32


class _Logits(nn.Cell):
    """``construct`` = the wrapped network's ``forward_logits``; adds no parameter-name prefix."""

    def __init__(self, net):
        super().__init__(auto_prefix=False)
        self.net = net

    def construct(self, x):
        return self.net.forward_logits(x)  # (B, T_out, C, H, W)


class _CastOutput(nn.Cell):
    """Runs ``cell`` and casts its output to ``dtype``; adds no parameter-name prefix."""

    def __init__(self, cell, dtype):
        super().__init__(auto_prefix=False)
        self.cell = cell
        self.dtype = dtype

    def construct(self, *args):
        return ops.cast(self.cell(*args), self.dtype)


class PredictedFrames(nn.Cell):
    """Frames in [0, 1] from a logits cell (``training_forward``): validation during training runs
    the network in its training precision."""

    def __init__(self, logits_cell):
        super().__init__(auto_prefix=False)
        self.logits_cell = logits_cell

    def construct(self, x):
        return ops.sigmoid(self.logits_cell(x))  # (B, T_out, C, H, W)


def _wrap_sub_cells(cell, types, compute_dtype, output_dtype):
    """Replace every sub-cell of ``types`` (at any depth) by itself computing in ``compute_dtype``
    with its output cast to ``output_dtype``. Returns the number replaced."""
    count = 0
    for name, sub in list(cell.name_cells().items()):
        if isinstance(sub, types):
            cell._cells[name] = _CastOutput(sub.to_float(compute_dtype), output_dtype)  # pylint: disable=protected-access
            count += 1
        else:
            count += _wrap_sub_cells(sub, types, compute_dtype, output_dtype)
    return count


def training_forward(net, amp_level="O0", dtype=ms.float16):
    """The cell a training step calls: float32 frames -> float32 logits at ``amp_level``.

    Modifies ``net``'s sub-cells in place for O1/O2/O3 (call once per network); the parameter
    names, shapes and dtypes do not change."""
    if amp_level not in AMP_LEVELS:
        raise ValueError(f"amp_level must be one of {', '.join(AMP_LEVELS)}, got {amp_level!r}")
    forward = _Logits(net)
    if amp_level == "O0":
        return forward
    if amp_level == "O1":
        _wrap_sub_cells(forward, FLOAT16_CONVOLUTIONS, dtype, ms.float32)
        return forward
    forward.to_float(dtype)
    if amp_level == "O2":
        _wrap_sub_cells(forward, FLOAT32_NORMS, ms.float32, dtype)
    return _CastOutput(forward, ms.float32)
