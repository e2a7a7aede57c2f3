"""Radar storms: a harder radar-like dataset in dBZ (-10 = no echo .. 60), generated without downloads.

``rain_cells`` moves its echo by one translation with small per-cell jitter, and only its cells rise
and fall. Real echo also turns, grows and decays as a whole, changes texture as it moves and flows in
across the borders. This generator has each of these, on the sizes of ``rain_cells`` (96x96, 20 frames,
``configs/rain_cpu.yaml`` runs on it unchanged with only ``--data_path``):

* curved motion: the whole field turns about a pivot off the frame (0.85-2.5 frame sizes from its
  centre) at 1-2.5 px per frame at the frame centre: trajectories are arcs, echo turns with them, and
  the motion differs across the frame (by the angular velocity times the distance);
* growth and decay of the whole field: a gain of ``A sin(2 pi (t - t0) / P)`` dB on every echo;
* evolving texture: band-limited noise whose modes drift in phase and change amplitude with time (so
  the texture is not only carried by the flow);
* echo entering across the borders: the field lives on an unbounded plane in storm coordinates (a
  stratiform noise field, and cells placed over the whole area the frame sweeps and beyond), the frame
  is a window moving over it;
* cells forming and dissipating: convective cells live a few frames (Gaussian envelope in time).

Every frame is evaluated exactly in storm coordinates ``q = c + exp(-i w t) (z - c)`` (``z = x + i y``,
pivot ``c``, angular velocity ``w`` in radians per frame): no interpolation, no canvas edge. Plane waves
stay plane waves under the rotation, so each noise field is two batched matrix products per sequence
(as in ``rain_cells``). Echo below ``MIN_ECHO_DBZ`` is no echo (``BACKGROUND_DBZ``), like a radar's
detection floor. Sequence ``i`` comes from ``default_rng((seed, i))`` alone. ``python -m
src.data.radar_storms OUT_DIR`` writes ``storms.npy`` (N, T, C, H, W) float32 (or train/val/test.npy with
``--splits true``), exactly as ``python -m src.data.rain_cells`` writes ``rain.npy``.
"""
import numpy as np

from src.cli import run_cli
from src.data import rain_cells
from src.data.rain_cells import BACKGROUND_DBZ, GENERATOR_OPTIONS, MAX_DBZ, parse_arguments, write_and_report

FILE_NAME = "storms.npy"
MIN_ECHO_DBZ = 0.0  # detection floor: weaker echo is written as BACKGROUND_DBZ
SPEED_RANGE = (1.0, 2.5)  # px per frame at the frame centre
PIVOT_RANGE = (0.85, 2.5)  # pivot distance from the frame centre, in frame sizes (log-uniform; off the frame)
GAIN_DB_RANGE = (3.0, 9.0)  # amplitude of the whole field's growth and decay
GAIN_PERIOD_RANGE = (24.0, 60.0)  # frames
CELLS_RANGE = (6, 15)  # convective cells per sequence (high exclusive)
CELL_MARGIN = 0.3  # cells are placed up to this fraction of the size beyond the frame
CELL_TIME_MARGIN = 6.0  # frames before the first and after the last frame
CELL_LIFE_RANGE = (2.5, 7.0)  # frames: envelope exp(-((t - t_peak) / life)^2)
CELL_PEAK_DBZ = (38.0, 56.0)
CELL_SIGMA = (3.0, 8.0)  # px, along and across
CELL_DRIFT = 0.2  # px per frame, each cell's own motion in storm coordinates (std per axis)
LIFE_CUTOFF = 0.02  # envelope below which a cell is left out of a frame (it would add under -5 dBZ of Z there)
STRATIFORM_MODES = 12
STRATIFORM_WAVELENGTH = (0.3, 1.15)  # in frame sizes
STRATIFORM_DRIFT = 0.01  # rad per frame, largest phase drift of a stratiform mode (under 0.2 px per frame)
STRATIFORM_DB = 10.0  # std of the stratiform field around its level
STRATIFORM_LEVEL_DBZ = (-14.0, 6.0)
TEXTURE_MODES = 16
TEXTURE_WAVELENGTH = (5.0, 18.0)  # px
TEXTURE_DRIFT = (0.05, 0.2)  # rad per frame: the texture changes as it moves
TEXTURE_SWELL = (0.05, 0.2)  # rad per frame: how fast each mode's amplitude swells and fades
TEXTURE_DB = 3.0  # std of the texture
_DB_TO_LN = np.log(10.0) / 10.0  # Z = exp(dBZ * _DB_TO_LN)
_USAGE = rain_cells._USAGE.replace("rain_cells", "radar_storms")


def _frame_centre(size):  # x + i y of the frame's centre
    return (size - 1) / 2.0 * (1 + 1j)


def _log_uniform(rng, low, high):
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _noise_modes(rng, count, wavelength, drift, swell=None):
    """Random plane-wave modes: wave vectors (M,) complex kx + i ky, phases, phase drifts (rad per frame),
    amplitudes and, with ``swell``, the rate and phase of each amplitude's slow swelling. ``drift``: a pair
    (low, high) of drift sizes, each mode's sign random, or one number d for drifts uniform in [-d, d]."""
    length = rng.uniform(*wavelength, count)
    heading = rng.uniform(0.0, 2.0 * np.pi, count)
    drift = rng.uniform(*drift, count) * rng.choice([-1.0, 1.0], count) if isinstance(drift, tuple) \
        else rng.uniform(-drift, drift, count)
    modes = {"wavevector": 2.0 * np.pi / length * np.exp(1j * heading), "phase": rng.uniform(0, 2 * np.pi, count),
             "drift": drift, "amplitude": rng.uniform(0.5, 1.0, count)}
    if swell is not None:
        modes["swell_rate"] = rng.uniform(*swell, count)
        modes["swell_phase"] = rng.uniform(0.0, 2.0 * np.pi, count)
    return modes


class RadarStorms(rain_cells.DbzSequences):
    """Random-access generator of radar-storm sequences in dBZ: ``sequence(i) -> (T, C, H, W)`` float32."""

    # ------------------------------------------------------------ the random draws

    def plan(self, index):
        """The random draws of sequence ``index``: {"motion", "gain", "cells", "stratiform", "texture"}."""
        rng = self.rng(index)
        size = self.size
        speed, heading = rng.uniform(*SPEED_RANGE), rng.uniform(0.0, 2.0 * np.pi)
        velocity = speed * np.exp(1j * heading)  # vx + i vy at the frame centre
        distance = size * _log_uniform(rng, *PIVOT_RANGE)
        omega = rng.choice([-1.0, 1.0]) * speed / distance  # rad per frame
        # the field turns about the pivot: dz/dt = i omega (z - pivot), which is ``velocity`` at the centre
        motion = {"pivot": _frame_centre(size) + 1j * velocity / omega, "omega": float(omega), "velocity": velocity}
        gain = {"amplitude": rng.uniform(*GAIN_DB_RANGE), "period": rng.uniform(*GAIN_PERIOD_RANGE)}
        gain["t0"] = rng.uniform(0.0, gain["period"])
        return {"motion": motion, "gain": gain, "cells": self._cells(rng, motion),
                "stratiform": dict(_noise_modes(rng, STRATIFORM_MODES, tuple(size * w for w in STRATIFORM_WAVELENGTH),
                                                STRATIFORM_DRIFT), level=rng.uniform(*STRATIFORM_LEVEL_DBZ)),
                "texture": _noise_modes(rng, TEXTURE_MODES, TEXTURE_WAVELENGTH, TEXTURE_DRIFT, TEXTURE_SWELL)}

    def _cells(self, rng, motion):
        """K cells; each is placed where the frame shows it at its peak time (anywhere within the frame and a
        margin around it), then held in storm coordinates, so upstream cells enter across the borders."""
        k = int(rng.integers(*CELLS_RANGE))
        low, high = -CELL_MARGIN * self.size, (1 + CELL_MARGIN) * self.size
        peak_time = rng.uniform(-CELL_TIME_MARGIN, self.num_frames - 1 + CELL_TIME_MARGIN, k)
        seen_at = rng.uniform(low, high, k) + 1j * rng.uniform(low, high, k)  # (K,) frame position at peak
        pivot, omega = motion["pivot"], motion["omega"]
        return {"position": pivot + np.exp(-1j * omega * peak_time) * (seen_at - pivot),  # (K,) storm coordinates
                "peak_time": peak_time, "life": rng.uniform(*CELL_LIFE_RANGE, k),
                "peak_dbz": rng.uniform(*CELL_PEAK_DBZ, k), "sigma": rng.uniform(*CELL_SIGMA, (k, 2)),
                "angle": rng.uniform(0.0, np.pi, k),
                "drift": rng.normal(0.0, CELL_DRIFT, k) + 1j * rng.normal(0.0, CELL_DRIFT, k)}

    def velocity(self, index):  # motion at the frame centre (vy, vx) in px per frame
        v = self.plan(index)["motion"]["velocity"]
        return np.array([v.imag, v.real])

    def motion(self, index):
        """(pivot (2,) as (row, col), angular velocity in rad per frame): a point of the field at ``r`` (row,
        col) at frame 0 is at ``pivot + rotation(omega t) (r - pivot)`` at frame t, rotating from +col
        towards +row for omega > 0."""
        m = self.plan(index)["motion"]
        return np.array([m["pivot"].imag, m["pivot"].real]), m["omega"]

    def gain_db(self, index, times):  # the whole field's growth (> 0) or decay in dB at ``times``
        g = self.plan(index)["gain"]
        return g["amplitude"] * np.sin(2.0 * np.pi * (np.asarray(times, np.float64) - g["t0"]) / g["period"])

    # ------------------------------------------------------------ the frames

    def _noise(self, modes, motion, t, swell=False):
        """Unit-variance sum of the plane waves ``modes`` fixed in storm coordinates: (T, H, W) at ``t`` (T,).

        A wave cos(Re(conj(k) q) + phase) at q = c + exp(-i w t)(z - c) is the wave of wave vector
        k_t = k exp(i w t) in frame coordinates, with phase + Re(conj(k) c) - Re(conj(k_t) c)."""
        pivot, omega = motion["pivot"], motion["omega"]
        grid = np.arange(self.size, dtype=np.float64)
        k = modes["wavevector"][None, :] * np.exp(1j * omega * t)[:, None]  # (T, M) in frame coordinates
        phase = (modes["phase"] + np.outer(t, modes["drift"]) + np.real(np.conj(modes["wavevector"]) * pivot)
                 - np.real(np.conj(k) * pivot))  # (T, M)
        amplitude = np.broadcast_to(modes["amplitude"], k.shape)  # (T, M)
        if swell:  # each mode swells and fades: the spectrum changes with time
            amplitude = amplitude * (1.0 + 0.7 * np.sin(np.outer(t, modes["swell_rate"]) + modes["swell_phase"]))
        amplitude = amplitude / np.sqrt((amplitude ** 2).sum(axis=1, keepdims=True) / 2.0)  # unit variance
        row = k.imag[:, :, None] * grid  # (T, M, H) angles in double precision, the products in single
        col = k.real[:, :, None] * grid + phase[:, :, None]  # (T, M, W)
        weighted = amplitude[:, None, :]  # (T, 1, M)
        # sum_m a cos(row + col) = (a cos row) @ cos col - (a sin row) @ sin col
        cos_row, sin_row = ((f(row).transpose(0, 2, 1) * weighted).astype(np.float32) for f in (np.cos, np.sin))
        return cos_row @ np.cos(col).astype(np.float32) - sin_row @ np.sin(col).astype(np.float32)  # (T, H, W)

    def _cell_z(self, cells, motion, t):
        """Linear reflectivity of the cells, (T, H, W): elliptical Gaussians moving with the field (and their
        own small drift), turning with it, under a growth-and-decay envelope; only (cell, frame) pairs whose
        envelope is above LIFE_CUTOFF are evaluated."""
        pivot, omega = motion["pivot"], motion["omega"]
        dt = t[None, :] - cells["peak_time"][:, None]  # (K, T)
        life = np.exp(-(dt / cells["life"][:, None]) ** 2)  # (K, T)
        which, when = np.nonzero(life > LIFE_CUTOFF)  # (n,) cell and frame of each evaluated pair
        turn = np.exp(1j * omega * t[when])  # (n,)
        centre = pivot + turn * (cells["position"][which] + cells["drift"][which] * dt[which, when] - pivot)  # (n,)
        angle = cells["angle"][which] + omega * t[when]  # (n,) the ellipse turns with the field
        inv_along, inv_across = (1.0 / cells["sigma"][which, j] ** 2 for j in (0, 1))
        cos, sin = np.cos(angle), np.sin(angle)
        # along = dx cos + dy sin, across = dy cos - dx sin: the exponent -((along/s_a)^2 + (across/s_c)^2) / 2
        # expanded as a dx^2 + b dx dy + c dy^2 (fewer full-size arrays)
        strength = 10.0 ** ((MIN_ECHO_DBZ + (cells["peak_dbz"][which] - MIN_ECHO_DBZ) * life[which, when]) / 10.0) \
            - 10.0 ** (MIN_ECHO_DBZ / 10.0)  # (n,) linear Z above the floor; 0 when the envelope is 0

        def per_pair(values):  # (n,) -> (n, 1, 1) float32: the (n, H, W) work is done in single precision
            return values.astype(np.float32)[:, None, None]

        a = per_pair(-0.5 * (cos ** 2 * inv_along + sin ** 2 * inv_across))
        b = per_pair(-(cos * sin * (inv_along - inv_across)))
        c = per_pair(-0.5 * (sin ** 2 * inv_along + cos ** 2 * inv_across))
        grid = np.arange(self.size, dtype=np.float64)
        dx = (grid[None, :] - centre.real[:, None]).astype(np.float32)[:, None, :]  # (n, 1, W)
        dy = (grid[None, :] - centre.imag[:, None]).astype(np.float32)[:, :, None]  # (n, H, 1)
        shape = np.exp(a * dx ** 2 + (b * dy) * dx + c * dy ** 2)  # (n, H, W)
        shape *= per_pair(strength)
        z = np.zeros((len(t), self.size, self.size), dtype=np.float32)
        for frame in np.unique(when):
            z[frame] = shape[when == frame].sum(axis=0)  # (H, W): the cells of that frame
        return z  # (T, H, W)

    def _reflectivity(self, index, times):  # -> dBZ frames (len(times), H, W) float32
        plan = self.plan(index)
        t = np.asarray(times, dtype=np.float64)
        motion = plan["motion"]
        stratiform_dbz = np.float32(plan["stratiform"]["level"]) + np.float32(STRATIFORM_DB) * self._noise(
            plan["stratiform"], motion, t)  # (T, H, W)
        z = np.exp(stratiform_dbz * np.float32(_DB_TO_LN)) + self._cell_z(plan["cells"], motion, t)  # linear Z
        texture = np.float32(TEXTURE_DB) * self._noise(plan["texture"], motion, t, swell=True)  # (T, H, W) dB
        dbz = np.log(z) / np.float32(_DB_TO_LN) + texture + self.gain_db(index, t).astype(np.float32)[:, None, None]
        return np.where(dbz < MIN_ECHO_DBZ, np.float32(BACKGROUND_DBZ), np.minimum(dbz, np.float32(MAX_DBZ)))

    def sequence(self, index):  # -> (T, C, H, W) float32 dBZ in [-10, 60]
        frames = self._reflectivity(index, np.arange(self.num_frames))  # (T, H, W)
        if self.channels == 1:
            return frames[:, None]
        previous = np.concatenate([self._reflectivity(index, [-1.0]), frames[:-1]])  # (T, H, W) frames -1 .. T-2
        smoothed = self._blur @ previous.astype(np.float64) @ self._blur.T  # (T, H, W) smoothed previous frame
        return np.stack([frames, smoothed], axis=1).astype(np.float32)  # (T, 2, H, W)


def main(argv):
    out_dir, options = parse_arguments(argv, _USAGE)
    return write_and_report(out_dir, RadarStorms(*(options[k] for k in GENERATOR_OPTIONS)), options, FILE_NAME)


if __name__ == "__main__":
    run_cli(main, doc=f"{__doc__}\n{_USAGE}", options=rain_cells._DEFAULTS)  # own options only, no config keys
