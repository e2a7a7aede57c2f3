"""Parameter, MAC/FLOP and activation-memory counts of the networks, from the layer specs.

From the config, without building a network; per sequence. MACs: convolutions that run (not an
encoder cell's zero-state first state-to-state step; transposed convolutions per INPUT pixel), so zoo
gives 104.60 GMAC, not the often quoted ~113. ``forward_flops = 2 * MACs``, ``train_step_flops = 3 *
forward_flops``. ``activation_bytes_per_sequence``: rough float32 size of what backward keeps (conv
outputs, twice before a LeakyReLU; per ConvLSTM step gate pre-activations, gates, c, tanh(c'), h).
"""
import math
from dataclasses import dataclass

from src.config import frame_shape, output_frame_shape

BYTES_PER_FLOAT = 4
ZOO_CELL_KERNEL = 5


@dataclass(frozen=True)
class LayerCost:
    name: str
    kind: str  # conv | deconv | convlstm | reshape
    cin: int
    cout: int
    kernel: int
    res_in: tuple  # input (height, width)
    res_out: tuple  # output (height, width)
    steps: int  # applications per sequence
    params: int
    macs: int  # per sequence, all steps
    activations: int  # float32 elements kept for backward, per sequence


def _scaled(res, factor):
    return res[0] // factor, res[1] // factor


def _hw(res):
    """(height, width) of a resolution given as one side (square) or as (height, width)."""
    return (int(res[0]), int(res[1])) if isinstance(res, (tuple, list)) else (int(res), int(res))


def conv_cost(name, cin, cout, kernel, res_in, steps, stride=1, activation=True, transposed=False):
    """A biased 'same' convolution applied ``steps`` times (output size res_in / stride) or, ``transposed``,
    one that multiplies the size by ``stride``, its MACs counted per INPUT pixel. ``res_in``: a side or (H, W)."""
    res_in = _hw(res_in)
    res_out = (res_in[0] * stride, res_in[1] * stride) if transposed else _scaled(res_in, stride)
    macs_res = res_in if transposed else res_out
    macs = steps * macs_res[0] * macs_res[1] * cin * cout * kernel * kernel
    acts = steps * res_out[0] * res_out[1] * cout * (2 if activation else 1)
    return LayerCost(name, "deconv" if transposed else "conv", cin, cout, kernel, res_in, res_out, steps,
                     cin * cout * kernel * kernel + cout, macs, acts)


def cell_cost(name, cin, hidden, kernel, res, steps, peephole=False, group_norm=False,
              zero_initial_state=False):
    """A ConvLSTM cell: conv weights, a 4C bias or GroupNorm scale and shift, 3 peephole maps of
    C x H x W; ``zero_initial_state`` (an encoder cell): no state-to-state convolution at step 1."""
    res = _hw(res)
    pixels, gates = res[0] * res[1], 4 * hidden
    params = (cin + hidden) * gates * kernel * kernel + (2 * gates if group_norm else gates)
    params += 3 * hidden * pixels if peephole else 0
    state_steps = max(steps - 1, 0) if zero_initial_state else steps
    macs = pixels * (steps * cin + state_steps * hidden) * gates * kernel * kernel
    acts = steps * pixels * (gates * (4 if group_norm else 3) + 3 * hidden)
    return LayerCost(name, "convlstm", cin, hidden, kernel, res, res, steps, params, macs, acts)


def _reshape_row(name, cin, cout, res_in, res_out, steps):
    return LayerCost(name, "reshape", cin, cout, 0, _hw(res_in), _hw(res_out), steps, 0, 0, 0)


def zoo_layers(cfg):
    """Layer rows of the ``zoo`` network (see ``encoder_forecaster``)."""
    c, height, width = frame_shape(cfg)
    s, t_in, t_out = (height, width), cfg.input_frames, cfg.output_frames
    k, pp = ZOO_CELL_KERNEL, cfg.peephole

    def cell(name, cin, hidden, res, steps, encoder=False):
        return cell_cost(name, cin, hidden, k, res, steps, peephole=pp, group_norm=True, zero_initial_state=encoder)

    half, quarter = _scaled(s, 2), _scaled(s, 4)
    return [
        conv_cost("enc_conv1", c, 16, 3, s, t_in),
        cell("enc_cell1", 16, 64, s, t_in, encoder=True),
        conv_cost("enc_conv2", 64, 64, 3, s, t_in, stride=2),
        cell("enc_cell2", 64, 96, half, t_in, encoder=True),
        conv_cost("enc_conv3", 96, 96, 3, half, t_in, stride=2),
        cell("enc_cell3", 96, 96, quarter, t_in, encoder=True),
        cell("dec_cell3 (no input)", 0, 96, quarter, t_out),
        conv_cost("dec_deconv3", 96, 96, 4, quarter, t_out, stride=2, transposed=True),
        cell("dec_cell2", 96, 96, half, t_out),
        conv_cost("dec_deconv2", 96, 96, 4, half, t_out, stride=2, transposed=True),
        cell("dec_cell1", 96, 64, s, t_out),
        conv_cost("dec_conv1", 64, 16, 3, s, t_out),
        conv_cost("dec_out", 16, output_frame_shape(cfg)[0], 1, s, t_out, activation=False),
    ]


def paper_layers(cfg):
    """Layer rows of the ``paper`` network (see ``encoder_forecaster``)."""
    c, height, width = frame_shape(cfg)
    p, t_in, t_out = cfg.patch_size, cfg.input_frames, cfg.output_frames
    side = (height // p, width // p)
    depth = c * p * p
    widths = list(cfg.hidden_channels)

    def cell(name, cin, hidden, steps, encoder=False):
        return cell_cost(name, cin, hidden, cfg.kernel_size, side, steps, peephole=cfg.peephole,
                         group_norm=cfg.group_norm, zero_initial_state=encoder)

    rows = [_reshape_row(f"space_to_depth {p}x{p}", c, depth, (height, width), side, t_in)]
    enc_in = [depth] + widths[:-1]
    rows += [cell(f"enc_cell{i + 1}", cin, hid, t_in, encoder=True)
             for i, (cin, hid) in enumerate(zip(enc_in, widths))]
    dec_in = [depth if cfg.forecaster_input == "prediction" else 0] + widths[:-1]
    for i, (cin, hid) in enumerate(zip(dec_in, widths)):
        rows.append(cell(f"dec_cell{i + 1}" + (" (no input)" if cin == 0 else ""), cin, hid, t_out))
    c_out = output_frame_shape(cfg)[0]  # target_channels
    rows.append(conv_cost("output_conv (concat of dec states)", sum(widths), c_out * p * p, 1, side, t_out,
                          activation=False))
    rows.append(_reshape_row(f"depth_to_space {p}x{p}", c_out * p * p, c_out, side, (height, width), t_out))
    return rows


def stacked_layers(cfg):
    """Layer rows of the ``stacked`` network (see ``src/models/stacked.py``): one stack runs the T_in + T_out - 1
    steps (inference: the observed frames, then its own predictions), from a zero state."""
    c, height, width = frame_shape(cfg)
    p, steps = cfg.patch_size, cfg.input_frames + cfg.output_frames - 1
    side = (height // p, width // p)
    depth = c * p * p
    widths = list(cfg.hidden_channels)
    rows = [_reshape_row(f"space_to_depth {p}x{p}", c, depth, (height, width), side, cfg.input_frames)]
    for i, (cin, hid) in enumerate(zip([depth] + widths[:-1], widths)):
        rows.append(cell_cost(f"cell{i + 1}", cin, hid, cfg.kernel_size, side, steps, peephole=cfg.peephole,
                              group_norm=cfg.group_norm, zero_initial_state=True))
    rows.append(conv_cost("output_conv (top state)", widths[-1], depth, 1, side, steps, activation=False))
    rows.append(_reshape_row(f"depth_to_space {p}x{p}", depth, c, side, (height, width), cfg.output_frames))
    return rows


def layer_table(cfg):
    """The list of ``LayerCost`` rows of the network selected by ``cfg.arch``."""
    return {"zoo": zoo_layers, "paper": paper_layers, "stacked": stacked_layers}[cfg.arch](cfg)


def network_cost(cfg):
    """Totals per sequence (see the module docstring for the conventions)."""
    rows = layer_table(cfg)
    macs = sum(r.macs for r in rows)
    input_elems = cfg.input_frames * math.prod(frame_shape(cfg))
    return dict(params=sum(r.params for r in rows), forward_macs=macs, forward_flops=2 * macs,
                train_step_flops=6 * macs,
                activation_bytes_per_sequence=BYTES_PER_FLOAT * (input_elems + sum(r.activations for r in rows)))


def count_parameters(net):
    """Number of trainable scalars of a MindSpore cell."""
    return int(sum(p.size for p in net.trainable_params()))


def _resolution(res):
    """'64' for a square 64x64 map, '12x20' otherwise."""
    return f"{res[0]}" if res[0] == res[1] else f"{res[0]}x{res[1]}"


def _human(n):
    for factor, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f}{suffix}"
    return str(n)


def format_cost_table(cfg):
    """Markdown layer table and totals of the configured network."""
    rows = layer_table(cfg)
    c, height, width = frame_shape(cfg)
    lines = [
        f"network: {cfg.arch}, {cfg.input_frames} -> {cfg.output_frames} frames of {c}x{height}x{width} (C x H x W)",
        "",
        "| layer | in -> out channels | kernel | resolution | steps | params | MACs/sequence |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for r in rows:
        kernel = f"{r.kernel}x{r.kernel}" if r.kernel else "-"
        res = _resolution(r.res_in) if r.res_in == r.res_out else f"{_resolution(r.res_in)} -> {_resolution(r.res_out)}"
        lines.append(f"| {r.name} | {r.cin} -> {r.cout} | {kernel} | {res} | {r.steps} | {r.params:,} | "
                     f"{_human(r.macs)} |")
    cost = network_cost(cfg)
    lines.append(f"| **total** | | | | | **{cost['params']:,}** | **{_human(cost['forward_macs'])}** |")
    lines += [
        "",
        f"- parameters: {cost['params']:,} ({cost['params'] / 1e6:.2f} M)",
        f"- forward: {cost['forward_macs'] / 1e9:.2f} GMAC = {cost['forward_flops'] / 1e9:.2f} GFLOP per sequence "
        f"({cost['forward_macs']:,} MAC; encoder cells skip the state-to-state convolution of their first, "
        "zero-state step)",
        f"- training step: ~{cost['train_step_flops'] / 1e9:.1f} GFLOP per sequence (3 x forward)",
        f"- activations kept for backward: ~{cost['activation_bytes_per_sequence'] / 2 ** 20:.0f} MiB per sequence "
        f"(float32; x batch_size for one step)",
    ]
    return "\n".join(lines)
