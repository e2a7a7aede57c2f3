"""Rain cells: a small radar-like dataset in dBZ (-10 = no echo .. 60), generated without downloads.

Advected convective and stratiform elliptical Gaussians (one velocity a sequence, small per-cell jitter,
peaks rising and falling) add up in linear Z under a moving texture; ``channels`` 2 adds the smoothed
previous frame. Sequence ``i`` comes from ``default_rng((seed, i))`` alone. ``python -m src.data.rain_cells
OUT_DIR`` writes ``rain.npy`` (N, T, C, H, W) float32 (or train/val/test.npy with ``--splits true``).
"""
import contextlib
import os

import numpy as np

from src.cli import BOOL_WORDS, parse_overrides, run_cli
from src.errors import UserError
from src.io import atomic_path

BACKGROUND_DBZ = -10.0  # no echo
MAX_DBZ = 60.0
LAYOUT = "NTCHW"
THRESHOLDS_DBZ = (20.0, 35.0)  # reported event fractions
SPEED_RANGE = (1.0, 2.5)  # px per frame
JITTER = 0.15  # px per frame, per cell
CELLS_RANGE = (4, 9)  # cells per sequence (high exclusive)
STRATIFORM_PROBABILITY = 0.3
TEXTURE_MODES = 6
TEXTURE_DBZ = 3.0  # amplitude of the moving texture
SMOOTH_SIGMA = 2.5  # px, second channel
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
_CHUNK = 32  # sequences generated and written at a time


def _gaussian_blur_matrix(size, sigma):  # B @ row = the row blurred (renormalised at the edges)
    pos = np.arange(size)
    weights = np.exp(-0.5 * ((pos[:, None] - pos[None, :]) / sigma) ** 2)
    return weights / weights.sum(axis=1, keepdims=True)


class DbzSequences:
    """What the dBZ generators share: sizes, a seeded random-access plan per sequence, blocks of sequences.
    A subclass defines ``plan(index)`` (drawing from ``rng(index)``) and ``sequence(index) -> (T, C, H, W)``."""

    def __init__(self, num_sequences=600, num_frames=20, size=96, channels=1, seed=0):
        if num_sequences < 1 or num_frames < 2 or size < 8 or channels not in (1, 2):
            raise ValueError("num_sequences >= 1, num_frames >= 2, size >= 8 and channels 1 or 2 are required, got "
                             f"{num_sequences}, {num_frames}, {size}, {channels}")
        self.num_sequences, self.num_frames = int(num_sequences), int(num_frames)
        self.size, self.channels, self.seed = int(size), int(channels), int(seed)
        self._blur = _gaussian_blur_matrix(self.size, SMOOTH_SIGMA)  # the second channel's smoothing

    def __len__(self):
        return self.num_sequences

    @property
    def shape(self):
        return self.num_sequences, self.num_frames, self.channels, self.size, self.size  # (N, T, C, H, W)

    def rng(self, index):
        """The random generator of sequence ``index`` alone: ``default_rng((seed, index))``."""
        if not 0 <= index < self.num_sequences:
            raise IndexError(f"sequence index {index} out of range [0, {self.num_sequences})")
        return np.random.default_rng((self.seed, int(index)))

    def block(self, start, stop):  # -> (n, T, C, H, W) float32
        return np.stack([self.sequence(i) for i in range(start, stop)])


class RainCells(DbzSequences):
    """Random-access generator of rain-cell sequences in dBZ: ``sequence(i) -> (T, C, H, W)`` float32."""

    def plan(self, index):
        """The random draws of sequence ``index``: velocity (2,) (vy, vx) and per-cell arrays."""
        rng = self.rng(index)
        speed, angle = rng.uniform(*SPEED_RANGE), rng.uniform(0.0, 2.0 * np.pi)
        velocity = speed * np.array([np.sin(angle), np.cos(angle)])  # (2,) vy, vx
        k = int(rng.integers(*CELLS_RANGE))
        wide = rng.random(k) < STRATIFORM_PROBABILITY
        margin = 0.1 * self.size
        cells = {
            "peak_pos": rng.uniform(-margin, self.size + margin, (k, 2)),  # (K, 2) y, x at the peak time
            "peak_time": rng.uniform(-4.0, self.num_frames + 4.0, k),
            "life": rng.uniform(4.0, 12.0, k),
            "peak_dbz": np.where(wide, rng.uniform(24.0, 34.0, k), rng.uniform(38.0, 58.0, k)),
            "sigma": np.where(wide[:, None], rng.uniform(10.0, 22.0, (k, 2)), rng.uniform(3.0, 8.0, (k, 2))),
            "angle": rng.uniform(0.0, np.pi, k),
            "velocity": velocity + rng.normal(0.0, JITTER, (k, 2)),  # (K, 2)
        }
        wavelength = rng.uniform(10.0, 40.0, TEXTURE_MODES)
        direction = rng.uniform(0.0, 2 * np.pi, TEXTURE_MODES)
        texture = {
            "wavenumber": (2 * np.pi / wavelength)[:, None] * np.stack([np.sin(direction), np.cos(direction)], 1),
            "phase": rng.uniform(0.0, 2 * np.pi, TEXTURE_MODES),
        }  # (M, 2) ky, kx and (M,)
        return velocity, cells, texture

    def velocity(self, index):  # common advection (vy, vx) in px per frame
        return self.plan(index)[0]

    def _reflectivity(self, index, times):  # -> dBZ frames (len(times), H, W) float64
        velocity, cells, texture = self.plan(index)
        grid = np.arange(self.size, dtype=np.float64)
        t = np.asarray(times, dtype=np.float64)

        def per_cell(values):  # (K,) -> (K, 1, 1, 1), broadcasting against (K, T, H, W)
            return values[:, None, None, None]

        dt = t[None, :, None, None] - per_cell(cells["peak_time"])  # (K, T, 1, 1)
        cy = per_cell(cells["peak_pos"][:, 0]) + per_cell(cells["velocity"][:, 0]) * dt
        cx = per_cell(cells["peak_pos"][:, 1]) + per_cell(cells["velocity"][:, 1]) * dt
        dy, dx = grid[:, None] - cy, grid[None, :] - cx  # (K, T, H, 1), (K, T, 1, W)
        # elliptical Gaussian: (along / sigma_along)^2 + (across / sigma_across)^2 with along, across the
        # offsets rotated by the cell's angle, expanded as a dy^2 + 2 b dy dx + c dx^2 (fewer full-size arrays)
        cos, sin = np.cos(cells["angle"]), np.sin(cells["angle"])
        inv_along, inv_across = 1.0 / cells["sigma"][:, 0] ** 2, 1.0 / cells["sigma"][:, 1] ** 2
        a = per_cell(cos ** 2 * inv_along + sin ** 2 * inv_across)
        b = per_cell(cos * sin * (inv_along - inv_across))
        c = per_cell(sin ** 2 * inv_along + cos ** 2 * inv_across)
        shape = np.exp(-0.5 * (a * dy ** 2 + (2.0 * b * dy) * dx + c * dx ** 2))  # (K, T, H, W)
        life = np.exp(-((dt / per_cell(cells["life"])) ** 2))  # (K, T, 1, 1): growth, then decay
        peak_dbz = BACKGROUND_DBZ + (per_cell(cells["peak_dbz"]) - BACKGROUND_DBZ) * life
        background_z = 10.0 ** (BACKGROUND_DBZ / 10.0)
        z = ((10.0 ** (peak_dbz / 10.0) - background_z) * shape).sum(axis=0)  # (T, H, W) linear Z
        modulation = self._texture(texture, velocity, grid, t)  # (T, H, W) dBZ
        dbz = 10.0 * np.log10(background_z + z * 10.0 ** (modulation / 10.0))
        return np.clip(dbz, BACKGROUND_DBZ, MAX_DBZ)

    @staticmethod
    def _texture(texture, velocity, grid, t):  # +-TEXTURE_DBZ plane waves carried by the flow: (T, H, W)
        ty = grid[None, :, None] - velocity[0] * t[:, None, None]  # (T, H, 1)
        tx = grid[None, None, :] - velocity[1] * t[:, None, None]  # (T, 1, W)
        ky, kx = texture["wavenumber"][:, 0], texture["wavenumber"][:, 1]  # (M,)
        row = ky[:, None, None] * ty[None, :, :, 0]  # (M, T, H)
        col = kx[:, None, None] * tx[None, :, 0, :] + texture["phase"][:, None, None]  # (M, T, W)
        # sum_m cos(row + col) = sum_m (cos row cos col - sin row sin col): two batched matrix products
        row, col = row.transpose(1, 2, 0), col.transpose(1, 0, 2)  # (T, H, M), (T, M, W)
        waves = np.cos(row) @ np.cos(col) - np.sin(row) @ np.sin(col)  # (T, H, W)
        return TEXTURE_DBZ * waves / np.sqrt(TEXTURE_MODES / 2.0)  # unit variance x TEXTURE_DBZ

    def sequence(self, index):  # -> (T, C, H, W) float32 dBZ in [-10, 60]
        frames = self._reflectivity(index, np.arange(-1, self.num_frames))  # (T + 1, H, W), frame -1 first
        channels = [frames[1:]]
        if self.channels == 2:
            channels.append(self._blur @ frames[:-1] @ self._blur.T)  # (T, H, W) smoothed previous frame
        return np.stack(channels, axis=1).astype(np.float32)  # (T, C, H, W)


def _write_range(tmp, generator, start, stop, counts):
    """Stream sequences start..stop-1 into a new .npy at ``tmp``; add event counts of channel 0."""
    shape = (stop - start,) + generator.shape[1:]
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
    try:
        for first in range(start, stop, _CHUNK):
            block = generator.block(first, min(first + _CHUNK, stop))  # (n, T, C, H, W)
            out[first - start:first - start + len(block)] = block
            counts["pixels"] += block[:, :, 0].size
            for threshold in THRESHOLDS_DBZ:
                counts[threshold] += int(np.count_nonzero(block[:, :, 0] >= threshold))
        out.flush()
    finally:
        del out


def _split_ranges(num_sequences, splits, file_name="rain.npy"):
    if not splits:
        return {file_name: (0, num_sequences)}
    n_val, n_test = (round(num_sequences * f) for f in SPLIT_FRACTIONS[1:])
    n_train = num_sequences - n_val - n_test
    if min(n_train, n_val, n_test) < 1:
        raise UserError(f"--splits true needs at least one sequence per split; {num_sequences} sequences give "
                        f"{n_train}/{n_val}/{n_test}: use --num_sequences 10 or more")
    return {"train.npy": (0, n_train), "val.npy": (n_train, n_train + n_val),
            "test.npy": (n_train + n_val, num_sequences)}


def write_dataset(out_dir, generator, splits=False, overwrite=False, file_name="rain.npy"):
    """Write ``generator``'s files under ``out_dir`` (``file_name``, or train/val/test.npy with ``splits``), all
    moved into place once complete; returns {"files": {path: shape}, "fraction_ge_20dbz": ..., ...}.
    ``generator``: any object with ``len``, ``shape`` (N, T, C, H, W) and ``block(start, stop)`` in dBZ."""
    ranges = _split_ranges(len(generator), splits, file_name)
    targets = {name: os.path.join(out_dir, name) for name in ranges}
    existing = [p for p in targets.values() if os.path.exists(p)]
    if existing and not overwrite:
        raise UserError(f"{existing[0]} already exists; choose another directory or pass --overwrite true")
    counts = {"pixels": 0, **{t: 0 for t in THRESHOLDS_DBZ}}
    try:
        os.makedirs(out_dir, exist_ok=True)
        with contextlib.ExitStack() as written:  # each file is moved into place when all are complete
            for name, (start, stop) in ranges.items():
                _write_range(written.enter_context(atomic_path(targets[name])), generator, start, stop, counts)
    except OSError as err:
        raise UserError(f"could not write the dataset under {out_dir} ({err.strerror or err}); files already "
                        "there were left as they were; free disk space or fix permissions and retry") from err
    return {"files": {targets[n]: (b - a,) + generator.shape[1:] for n, (a, b) in ranges.items()},
            **{f"fraction_ge_{t:g}dbz": counts[t] / max(1, counts["pixels"]) for t in THRESHOLDS_DBZ}}


_DEFAULTS = {"num_sequences": 600, "num_frames": 20, "size": 96, "channels": 1, "seed": 0, "splits": False,
             "overwrite": False}  # the option's type is its default's
_MINIMUM = {"num_sequences": 1, "num_frames": 2, "size": 8}
_USAGE = ("usage: python -m src.data.rain_cells OUT_DIR [--num_sequences 600] [--num_frames 20] [--size 96] "
          "[--channels 1|2] [--seed 0] [--splits false] [--overwrite false]")


def parse_arguments(argv, usage=_USAGE):  # -> OUT_DIR, options dict (the options and checks of _DEFAULTS)
    if not argv or argv[0].startswith("--"):
        raise UserError(f"missing OUT_DIR; {usage}")
    out_dir, options = argv[0], dict(_DEFAULTS)
    for name, raw in parse_overrides(argv[1:]).items():
        if name not in _DEFAULTS:
            raise UserError(f"unknown option --{name}; {usage}")
        kind = type(_DEFAULTS[name])
        try:
            options[name] = BOOL_WORDS[raw.lower()] if kind is bool else int(raw)
        except (KeyError, ValueError):
            raise UserError(f"--{name}: expected {kind.__name__}, got {raw!r}; {usage}") from None
    for name, low in _MINIMUM.items():
        if options[name] < low:
            raise UserError(f"--{name} must be >= {low}, got {options[name]}")
    if options["channels"] not in (1, 2):
        raise UserError(f"--channels must be 1 or 2, got {options['channels']}")
    return out_dir, options


GENERATOR_OPTIONS = ("num_sequences", "num_frames", "size", "channels", "seed")  # the constructor's arguments


def write_and_report(out_dir, generator, options, file_name):
    """The command line's work after parsing: write the files, print what was written and how to train on it."""
    summary = write_dataset(out_dir, generator, splits=options["splits"], overwrite=options["overwrite"],
                            file_name=file_name)
    for path, shape in summary["files"].items():
        print(f"wrote {path}: float32 {shape} ({LAYOUT}, dBZ {BACKGROUND_DBZ:g}..{MAX_DBZ:g})")
    fractions = ", ".join(f">= {t:g} dBZ: {100 * summary[f'fraction_ge_{t:g}dbz']:.1f} %" for t in THRESHOLDS_DBZ)
    print(f"pixels (channel 0) {fractions}")
    print(f"train with: --dataset sequences --data_path {out_dir}{'' if options['splits'] else '/' + file_name} "
          f"--data_layout {LAYOUT} --data_scale minmax --data_min {BACKGROUND_DBZ:g} --data_max {MAX_DBZ:g}")
    return 0


def main(argv):
    out_dir, options = parse_arguments(argv)
    return write_and_report(out_dir, RainCells(*(options[k] for k in GENERATOR_OPTIONS)), options, "rain.npy")


if __name__ == "__main__":
    run_cli(main, doc=f"{__doc__}\n{_USAGE}", options=_DEFAULTS)  # own options only, no config keys
