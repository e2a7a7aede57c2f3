"""Pictures of sequences, predictions and metric curves, drawn with Pillow only; writers return their path.

Frames are (T, C, H, W) or (T, H, W) in [0, 1] (clipped; NaN is black, except in the truth, where NaN marks a
pixel without data, drawn ``NO_DATA`` in the truth and |error| rows), grey or, single-channel, in a stepped
``ColourScale`` of the data's units (``radar_scale``: dBZ) with a colour bar.
"""
import functools
import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from src.io import atomic_path

GAP = 2  # separator line between frames, px
LABEL_WIDTH = 60  # left label column of the strip, px
GROUP_HEADER = 14  # "channel k" band above each row group of a multi-channel strip, px
SEPARATOR = (255, 255, 255)
EMPTY_CELL = (215, 215, 215)  # strip cell with no frame (rows of different length)
TEXT = (20, 20, 20)
OBSERVED, PREDICTED = (40, 160, 60), (210, 40, 40)  # gif marker colours of input and predicted frames
SERIES_COLOURS = ((31, 100, 180), (230, 120, 20), (40, 150, 60), (200, 40, 40), (130, 80, 170))
METRIC_TITLES = {"mse": "MSE (sum over pixels)", "mae": "MAE (sum over pixels)", "ssim": "SSIM", "psnr": "PSNR (dB)"}

# weather-radar reflectivity display: (lower bound in dBZ, colour) of 5-dBZ steps, the last open upwards
RADAR_STEPS = (
    (0.0, (118, 118, 118)), (5.0, (4, 233, 231)), (10.0, (1, 159, 244)), (15.0, (3, 0, 244)),
    (20.0, (2, 253, 2)), (25.0, (1, 197, 1)), (30.0, (0, 142, 0)), (35.0, (253, 248, 2)),
    (40.0, (229, 188, 0)), (45.0, (253, 149, 0)), (50.0, (253, 0, 0)), (55.0, (212, 0, 0)),
    (60.0, (248, 0, 253)),
)
BELOW_SCALE = (0, 0, 0)  # values below the lowest step: no echo
NO_DATA = (255, 182, 193)  # truth pixels without a measurement (nodata): pale pink, in no grey or radar step
MARK = (20, 20, 20)  # threshold marks on the colour bar
# colour bar px: per step, bar width, frames -> bar, threshold labels (left), step labels (right), units above
BAR_CELL, BAR_WIDTH, BAR_MARGIN, BAR_MARKS, BAR_TICKS, BAR_TITLE = 12, 14, 8, 30, 34, 16


@functools.lru_cache(maxsize=None)
def _font():
    return ImageFont.load_default()


def _text_size(draw, text):
    left, top, right, bottom = draw.textbbox((0, 0), text, font=_font())
    return right - left, bottom


@dataclass(frozen=True)
class ColourScale:
    """Stepped colour map: ``to_units(frame)`` in [bounds[k], bounds[k+1]) gets colours[k] (the last step open
    upwards), below bounds[0] BELOW_SCALE; ``thresholds`` are marked on the colour bar."""

    to_units: object
    bounds: tuple
    colours: tuple
    units: str
    thresholds: tuple = ()

    def rgb(self, frames):
        """frames (...) in [0, 1] -> uint8 (..., 3)."""
        values = np.asarray(self.to_units(frames), dtype=np.float64)
        step = np.searchsorted(np.asarray(self.bounds), values, side="right")  # 0 = below the scale
        return np.array((BELOW_SCALE,) + tuple(self.colours), dtype=np.uint8)[step]

    def step_of(self, value):
        """Index k of the step holding ``value`` (-1 below the scale)."""
        return int(np.searchsorted(np.asarray(self.bounds), value, side="right")) - 1


def radar_scale(to_units, thresholds=(), units="dBZ"):
    """The weather-radar colour scale (RADAR_STEPS; black below) for frames whose ``to_units`` are dBZ."""
    values = tuple(float(t) for t in thresholds)
    if not all(math.isfinite(t) for t in values):
        raise ValueError(f"thresholds must be finite numbers, got {list(thresholds)}")
    bounds, colours = zip(*RADAR_STEPS)
    return ColourScale(to_units, tuple(bounds), tuple(colours), units, values)


def _frames(array, name, shapes="(T, C, H, W) or (T, H, W)"):
    """Validate one sequence: (T, C, H, W) or (T, H, W) -> float64 (T, C, H, W) in [0, 1]."""
    arr = np.asarray(array)
    if arr.ndim == 5:
        raise ValueError(f"{name}: got a batch of shape {arr.shape}; pass one sequence, e.g. {name}[0], "
                         f"shaped {shapes}")
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim != 4:
        raise ValueError(f"{name}: expected shape {shapes}, got {arr.shape}")
    if min(arr.shape) == 0:
        raise ValueError(f"{name}: empty sequence, shape {arr.shape}")
    return np.clip(np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def _check_scale(scale):
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def _no_data(target):
    """bool (T, C, H, W): the truth's NaN pixels (no data); None without truth."""
    if target is None:
        return None
    missing = np.isnan(np.asarray(target, dtype=np.float64))
    return missing[:, None] if missing.ndim == 3 else missing


def _sequence(inputs, target, pred, scale, colours):
    """Validated (scale, inputs, target, pred, no-data mask of the target or None), frames (T, C, H, W);
    ``inputs`` or ``target`` may be None."""
    scale = _check_scale(scale)
    x_in = None if inputs is None else _frames(inputs, "inputs")
    y_pred, y_true = _frames(pred, "pred"), None if target is None else _frames(target, "target")
    if y_true is not None and y_pred.shape != y_true.shape:
        raise ValueError(f"pred shape {np.shape(pred)} does not match target shape {np.shape(target)}")
    ref = "pred" if y_true is None else "target"
    if x_in is not None and x_in.shape[1] != y_pred.shape[1]:
        raise ValueError(f"inputs frames have {x_in.shape[1]} channel(s) but {ref} frames have "
                         f"{y_pred.shape[1]}")
    if x_in is not None and x_in.shape[2:] != y_pred.shape[2:]:
        raise ValueError(f"inputs frames are {x_in.shape[2]}x{x_in.shape[3]} but {ref} frames "
                         f"are {y_pred.shape[2]}x{y_pred.shape[3]}")
    if colours is not None and not isinstance(colours, ColourScale):
        raise ValueError("colours must be a ColourScale (e.g. radar_scale(...)) or None, "
                         f"got {type(colours).__name__}")
    if colours is not None and y_pred.shape[1] != 1:  # a colour scale is for single-channel frames
        raise ValueError(f"a colour scale is drawn for single-channel frames; these have {y_pred.shape[1]} "
                         "channels (pass colours=None: grey, one row group per channel)")
    return scale, x_in, y_true, y_pred, _no_data(target)


def _upscale(tiles, scale):
    """Nearest-neighbour upscaling of (T, H, W, 3) tiles."""
    return np.repeat(np.repeat(tiles, scale, axis=1), scale, axis=2) if scale > 1 else tiles


def _mark_no_data(rgb, missing):
    """rgb (T, H, W, 3) uint8 with ``missing`` (T, H, W) pixels in NO_DATA (None: unchanged)."""
    if missing is not None and missing.any():
        rgb = rgb.copy()
        rgb[missing] = NO_DATA
    return rgb


def _tiles(frames, scale, colours=None, missing=None):
    """(T, H, W) in [0, 1] -> uint8 RGB tiles (T, H*scale, W*scale, 3): grey, or in ``colours``; ``missing``
    (T, H, W) pixels in NO_DATA."""
    if colours is not None:
        return _upscale(_mark_no_data(colours.rgb(frames), missing), scale)
    grey = np.repeat(np.rint(frames * 255.0).astype(np.uint8)[..., None], 3, axis=-1)  # (T, H, W, 3)
    return _upscale(_mark_no_data(grey, missing), scale)


def _heat_tiles(error, scale, missing=None):
    """|error| (T, H, W) -> 'hot' tiles (black-red-yellow-white), 1.0 always white: runs stay comparable;
    ``missing`` (T, H, W) pixels (no truth) in NO_DATA."""
    e = error[..., None]  # (T, H, W, 1)
    rgb = np.clip(np.concatenate([3 * e, 3 * e - 1, 3 * e - 2], axis=-1), 0.0, 1.0)
    return _upscale(_mark_no_data(np.rint(rgb * 255.0).astype(np.uint8), missing), scale)


def _atomic_save(image, path, fmt, **save_args):
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **save_args)  # fmt given: the temporary name's extension is not read
    return path


def colour_bar_size(colours):
    """(width, height) in px of the colour bar drawn right of the frames."""
    return (BAR_MARGIN + BAR_MARKS + BAR_WIDTH + BAR_TICKS,
            BAR_TITLE + (len(colours.bounds) + 1) * BAR_CELL + GAP)


def colour_bar_box(colours, x0, y0):
    """(left, top, right, bottom) of the bar in an area at (x0, y0): top step first, below-scale cell last."""
    left, top = x0 + BAR_MARGIN + BAR_MARKS, y0 + BAR_TITLE
    return left, top, left + BAR_WIDTH - 1, top + (len(colours.bounds) + 1) * BAR_CELL - 1


def colour_bar_y(colours, value, top):
    """y (px) of ``value`` on a bar topped at ``top``: linear within its step (the last as wide as the one
    before); values below the scale sit on its lower edge."""
    bounds, n = colours.bounds, len(colours.bounds)
    k = colours.step_of(value)
    if k < 0:
        return top + n * BAR_CELL
    upper = bounds[k + 1] if k + 1 < n else bounds[k] + (bounds[k] - bounds[k - 1] if n > 1 else 1.0)
    within = min(1.0, (value - bounds[k]) / (upper - bounds[k]))
    return int(round(top + (n - k) * BAR_CELL - within * BAR_CELL))


def _draw_colour_bar(draw, colours, x0, y0):
    """The steps (labelled by their lower bounds), the units above, the thresholds marked at the left."""
    left, top, right, bottom = colour_bar_box(colours, x0, y0)
    n = len(colours.bounds)
    draw.text((left, y0 + 2), colours.units, fill=TEXT, font=_font())
    for j, colour in enumerate([BELOW_SCALE] + list(colours.colours)):  # bottom to top
        y_low = bottom - j * BAR_CELL
        draw.rectangle([left, y_low - BAR_CELL + 1, right, y_low], fill=colour)
    for k, bound in enumerate(colours.bounds):  # each step's lower bound, at its lower edge
        draw.text((right + 5, top + (n - k) * BAR_CELL - 6), f"{bound:g}", fill=TEXT, font=_font())
    for t in colours.thresholds:
        y = colour_bar_y(colours, t, top)
        draw.rectangle([left - 5, y - 1, right, y], fill=MARK)
        draw.text((left - 7 - _text_size(draw, f"{t:g}")[0], y - 6), f"{t:g}", fill=MARK, font=_font())


def _paste_row(canvas, tiles, x0, y0):
    """Paste (T, h, w, 3) tiles left to right from (x0, y0), GAP px apart."""
    w = tiles.shape[2]
    for i, tile in enumerate(tiles):
        canvas.paste(Image.fromarray(tile, "RGB"), (x0 + i * (w + GAP), y0))


def _channel_rows(x_in, y_true, y_pred, scale, colours, missing=None):
    """The rows of one channel, frames (T, H, W): [(label, sub-label, tiles (T, h, w, 3)), ...]; ``missing``
    (T, H, W): truth pixels without data, marked in the truth and |error| rows and left out of the mean error."""
    t_in = len(x_in)
    predicted = f"{t_in + 1}-{t_in + len(y_pred)}"
    inputs = ("input", f"1-{t_in}", _tiles(x_in, scale, colours))
    prediction = ("prediction", predicted, _tiles(y_pred, scale, colours))
    if y_true is None:
        return [inputs, prediction]
    error = np.abs(y_pred - y_true)  # (T, H, W)
    scored = error if missing is None else error[~missing]
    mean = f"mean {scored.mean():.3f}" if scored.size else "no data"
    return [inputs, ("truth", predicted, _tiles(y_true, scale, colours, missing)), prediction,
            ("|error|", mean, _heat_tiles(error, scale, missing))]


def _draw_row(canvas, draw, row, x0, y0, cols):
    """One labelled row of tiles at (x0, y0); grey cells where the row has no frame."""
    label, sub, tiles = row
    h, w = tiles.shape[1:3]
    for c in range(len(tiles), cols):
        draw.rectangle([x0 + c * (w + GAP), y0, x0 + c * (w + GAP) + w - 1, y0 + h - 1], fill=EMPTY_CELL)
    _paste_row(canvas, tiles, x0, y0)
    text_y = y0 + max(0, (h - 26) // 2)
    draw.text((4, text_y), label, fill=TEXT, font=_font())
    draw.text((4, text_y + 13), sub, fill=(110, 110, 110), font=_font())


def save_sequence_strip(path, inputs, target, pred, scale=1, colours=None):
    """PNG rows of inputs, truth, prediction and |error| heat map (no ``target``: inputs and prediction), per
    channel under a "channel k" band when C > 1; ``colours`` adds its colour bar at the right."""
    scale, x_in, y_true, y_pred, missing = _sequence(inputs, target, pred, scale, colours)
    channels = y_pred.shape[1]
    groups = [_channel_rows(x_in[:, k], None if y_true is None else y_true[:, k], y_pred[:, k], scale, colours,
                            None if missing is None else missing[:, k])
              for k in range(channels)]
    h, w = y_pred.shape[2] * scale, y_pred.shape[3] * scale
    cols, header = max(len(x_in), len(y_pred)), GROUP_HEADER if channels > 1 else 0
    frames_w = LABEL_WIDTH + GAP + cols * (w + GAP)
    group_h = header + len(groups[0]) * (h + GAP)
    bar_w, bar_h = colour_bar_size(colours) if colours is not None else (0, 0)
    canvas = Image.new("RGB", (frames_w + bar_w, max(GAP + channels * group_h, GAP + bar_h)), SEPARATOR)
    draw = ImageDraw.Draw(canvas)
    for k, rows in enumerate(groups):
        y_group = GAP + k * group_h
        if header:
            draw.text((4, y_group + 1), f"channel {k}", fill=TEXT, font=_font())
        for r, row in enumerate(rows):
            _draw_row(canvas, draw, row, LABEL_WIDTH + GAP, y_group + header + r * (h + GAP), cols)
    if colours is not None:
        _draw_colour_bar(draw, colours, frames_w, GAP)
    return _atomic_save(canvas, path, "PNG")


def save_frames_png(path, frames, scale=1):
    """One row of single-channel frames (e.g. all 20 frames of a generated sequence) as a PNG."""
    scale = _check_scale(scale)
    seq = _frames(frames, "frames", "(T, 1, H, W) or (T, H, W)")
    if seq.shape[1] != 1:
        raise ValueError(f"frames: expected (T, 1, H, W) with one channel, got {np.shape(frames)}")
    tiles = _tiles(seq[:, 0], scale)
    h, w = tiles.shape[1:3]
    canvas = Image.new("RGB", (GAP + len(seq) * (w + GAP), h + 2 * GAP), SEPARATOR)
    _paste_row(canvas, tiles, GAP, GAP)
    return _atomic_save(canvas, path, "PNG")


_GIF_PAD, _GIF_BORDER, _GIF_TITLE_H, _GIF_STATUS_H = 6, 3, 16, 18


def _gif_frame(left, right, titles, status, colour):
    """One GIF frame: two (h, w, 3) tiles side by side in coloured borders, titles, status."""
    h, w = left.shape[:2]
    panel_w, panel_h = w + 2 * _GIF_BORDER, h + 2 * _GIF_BORDER
    canvas = Image.new("RGB", (3 * _GIF_PAD + 2 * panel_w, _GIF_TITLE_H + panel_h + _GIF_STATUS_H), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for k, (tile, title) in enumerate(zip((left, right), titles)):
        x0 = _GIF_PAD + k * (panel_w + _GIF_PAD)
        draw.text((x0, 2), title, fill=TEXT, font=_font())
        draw.rectangle([x0, _GIF_TITLE_H, x0 + panel_w - 1, _GIF_TITLE_H + panel_h - 1], fill=colour)
        canvas.paste(Image.fromarray(tile, "RGB"), (x0 + _GIF_BORDER, _GIF_TITLE_H + _GIF_BORDER))
    draw.text((_GIF_PAD, _GIF_TITLE_H + panel_h + 3), status, fill=colour, font=_font())
    return canvas


def _stacked_tiles(frames, scale, colours, missing=None):
    """(T, C, H, W) in [0, 1] -> (T, C*h + (C-1)*GAP, w, 3): the channels top to bottom, GAP px of white apart;
    ``missing`` (T, C, H, W) pixels in NO_DATA."""
    tiles = [_tiles(frames[:, k], scale, colours, None if missing is None else missing[:, k])
             for k in range(frames.shape[1])]  # C x (T, h, w, 3)
    gap = np.full(tiles[0].shape[:1] + (GAP,) + tiles[0].shape[2:], 255, dtype=np.uint8)  # (T, GAP, w, 3)
    return np.concatenate([tiles[0]] + [part for tile in tiles[1:] for part in (gap, tile)], axis=1)


def save_comparison_gif(path, target, pred, inputs=None, scale=2, frame_ms=250, colours=None):
    """Looping GIF of truth | prediction (channels stacked) after the optional ``inputs`` (green "observed",
    red "predicted"); the last frame is held longer so the end of the sequence is visible."""
    scale, x_in, y_true, y_pred, missing = _sequence(inputs, target, pred, scale, colours)
    if not (isinstance(frame_ms, (int, np.integer)) and frame_ms > 0):
        raise ValueError(f"frame_ms must be a positive integer, got {frame_ms!r}")
    frames, t_in = [], 0 if x_in is None else len(x_in)
    total = t_in + len(y_true)
    for t, tile in enumerate(_stacked_tiles(x_in, scale, colours) if t_in else []):
        frames.append(_gif_frame(tile, tile, ("input", "input"), f"observed {t + 1}/{total}", OBSERVED))
    for t, (a, b) in enumerate(zip(_stacked_tiles(y_true, scale, colours, missing), _stacked_tiles(y_pred, scale, colours))):
        frames.append(_gif_frame(a, b, ("ground truth", "prediction"),
                                 f"predicted {t_in + t + 1}/{total}", PREDICTED))
    durations = [int(frame_ms)] * (len(frames) - 1) + [int(frame_ms) * 4]
    return _atomic_save(frames[0], path, "GIF", save_all=True, append_images=frames[1:],
                        duration=durations, loop=0)


_CHART_W, _CHART_H = 360, 230
_PLOT_LEFT, _PLOT_RIGHT, _PLOT_TOP, _PLOT_BOTTOM = 56, 14, 24, 34
_LEGEND_H = 20


def _check_curves(per_frame, name):
    """Validate a per-frame dict (or a metrics result holding one) -> name -> float64 (T,)."""
    if isinstance(per_frame, dict) and isinstance(per_frame.get("per_frame"), dict):
        per_frame = per_frame["per_frame"]
    if not isinstance(per_frame, dict):
        raise ValueError(f"{name}: expected a dict of per-frame lists, got {type(per_frame).__name__}")
    missing = [k for k in METRIC_TITLES if k not in per_frame]
    if missing:
        raise ValueError(f"{name}: missing per-frame metric(s) {', '.join(missing)}")
    curves = {k: np.asarray(per_frame[k], dtype=np.float64) for k in METRIC_TITLES}
    lengths = {v.shape for v in curves.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1 or next(iter(lengths))[0] == 0:
        raise ValueError(f"{name}: each metric needs the same non-empty list of per-frame values, "
                         f"got shapes {[v.shape for v in curves.values()]}")
    for k, v in curves.items():
        if not np.isfinite(v).all():
            raise ValueError(f"{name}: per-frame {k} contains NaN or infinite values")
    return curves


def nice_ticks(lo, hi, target_count=5):
    """Round tick positions (steps of 1, 2, 2.5 or 5 x 10^k) covering [lo, hi]."""
    if hi - lo < 1e-12 * max(1.0, abs(hi)):
        pad = max(abs(hi) * 0.05, 1e-3)
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(target_count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    first = math.floor(lo / step + 1e-9) * step
    last = math.ceil(hi / step - 1e-9) * step
    return [first + i * step for i in range(int(round((last - first) / step)) + 1)], step


def _tick_label(value, step):
    """Format a tick with just enough decimals for ``step`` (0.25 -> 2, 0.5 -> 1, 5 -> 0)."""
    exponent = math.floor(math.log10(step) + 1e-9)
    mantissa = step / 10.0 ** exponent
    decimals = max(0, -exponent + (1 if abs(mantissa - 2.5) < 1e-6 else 0))
    return f"{value + 0.0:.{decimals}f}"  # + 0.0 turns -0.0 into 0.0


def _draw_chart(draw, x0, y0, heading, series, first_frame):
    """One line chart for each (label, curve, colour) in ``series``; NaN values (undefined scores) are left out."""
    left, top = x0 + _PLOT_LEFT, y0 + _PLOT_TOP
    right, bottom = x0 + _CHART_W - _PLOT_RIGHT, y0 + _CHART_H - _PLOT_BOTTOM
    values = np.concatenate([curve for _, curve, _ in series])
    values = values[np.isfinite(values)] if np.isfinite(values).any() else np.zeros(1)
    ticks, step = nice_ticks(float(values.min()), float(values.max()))
    lo, hi = ticks[0], ticks[-1]
    n = len(series[0][1])
    frames = [first_frame + i for i in range(n)]
    labelled = set(frames[::max(1, math.ceil(n / 12))]) | {frames[-1]}  # at most ~12 labels

    xs = [(left + right) / 2] if n == 1 else [left + (right - left) * i / (n - 1) for i in range(n)]

    def py(v):
        return bottom - (bottom - top) * (v - lo) / (hi - lo)

    main_label, main_curve, _ = series[0]
    who = f"{main_label} " if len(series) > 1 else ""
    defined = main_curve[np.isfinite(main_curve)]
    mean = f"mean {float(defined.mean()):.4g}" if defined.size else "undefined"
    draw.text((left, y0 + 6), f"{heading}   {who}{mean}", fill=TEXT, font=_font())
    for v in ticks:  # horizontal grid lines with y tick labels
        y = round(py(v))
        draw.line([(left, y), (right, y)], fill=(225, 225, 225))
        draw.line([(left - 4, y), (left, y)], fill=TEXT)
        label = _tick_label(v, step)
        tw, th = _text_size(draw, label)
        draw.text((left - 7 - tw, y - th // 2 - 1), label, fill=TEXT, font=_font())
    for i, f in enumerate(frames):  # x ticks at every frame, labels where they fit
        x = round(xs[i])
        draw.line([(x, bottom), (x, bottom + 4)], fill=TEXT)
        if f in labelled:
            tw, _ = _text_size(draw, str(f))
            draw.text((x - tw // 2, bottom + 6), str(f), fill=TEXT, font=_font())
    tw = _text_size(draw, "predicted frame")[0]
    draw.text(((left + right - tw) // 2, bottom + 19), "predicted frame", fill=(90, 90, 90), font=_font())
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=TEXT)
    for _, curve, colour in reversed(series):  # main series drawn last, on top
        points = [(xs[i], py(float(v))) for i, v in enumerate(curve) if np.isfinite(v)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2, joint="curve")
        for x, y in points:
            draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=colour)


def _save_charts(path, grid, labels, first_frame):
    """PNG of line charts, ``grid``: rows of (heading, [curve of each label]); a legend when labels > 1."""
    legend_h = _LEGEND_H if len(labels) > 1 else 0
    canvas = Image.new("RGB", (len(grid[0]) * _CHART_W, len(grid) * _CHART_H + legend_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    colours = [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i in range(len(labels))]
    for row, charts in enumerate(grid):
        for col, (heading, curves) in enumerate(charts):
            _draw_chart(draw, col * _CHART_W, row * _CHART_H, heading, list(zip(labels, curves, colours)), first_frame)
    x, y = _PLOT_LEFT, len(grid) * _CHART_H + 4
    for label, colour in zip(labels, colours) if legend_h else ():  # the legend
        draw.rectangle([x, y + 3, x + 14, y + 8], fill=colour)
        draw.text((x + 19, y), label, fill=TEXT, font=_font())
        x += 19 + _text_size(draw, label)[0] + 18
    return _atomic_save(canvas, path, "PNG")


def save_metric_plot(path, per_frame, first_frame=11, compare=None, label="model"):
    """PNG of 2 x 2 charts of mse, mae, ssim, psnr per frame of ``per_frame`` (or StreamingMetrics.result());
    ``compare`` maps labels (e.g. baselines) to more per-frame dicts drawn alongside."""
    series = [(label, _check_curves(per_frame, "per_frame"))]
    for other_label, other in (compare or {}).items():
        curves = _check_curves(other, f"compare[{other_label!r}]")
        if len(curves["mse"]) != len(series[0][1]["mse"]):
            raise ValueError(f"compare[{other_label!r}] has {len(curves['mse'])} frames, "
                             f"per_frame has {len(series[0][1]['mse'])}")
        series.append((str(other_label), curves))
    grid = [[(METRIC_TITLES[m], [curves[m] for _, curves in series]) for m in list(METRIC_TITLES)[k:k + 2]]
            for k in (0, 2)]  # two rows of two charts
    return _save_charts(path, grid, [name for name, _ in series], first_frame)


def save_skill_plot(path, by_threshold, first_frame=11, scores=("csi", "hss"), titles=None):
    """PNG of skill scores per lead frame, a row of charts per threshold: ``by_threshold`` [(threshold,
    {label: SkillScores per_lead_frame dict}), ...], the evaluated model first; None values are left out.
    ``titles``: a chart heading per score key (default: the key in capitals), followed by ">= threshold"."""
    titles = titles or {}
    if not by_threshold:
        raise ValueError("by_threshold: no thresholds to plot")
    labels = list(by_threshold[0][1])
    grid = [[(f"{titles.get(score, score.upper())} >= {threshold:g}",
              [np.array([np.nan if v is None else v for v in curves[label][score]], dtype=np.float64)
               for label in labels]) for score in scores] for threshold, curves in by_threshold]
    return _save_charts(path, grid, labels, first_frame)
