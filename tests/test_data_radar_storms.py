"""Radar-storm generator: determinism, value range, event fractions, the command line, and each dynamic it
adds to the rain cells, checked on the frames it writes: the field turns (at the planned angular velocity,
not as a translation), grows and decays as a whole, its texture changes beyond being carried, echo enters
across the borders, cells form and dissipate."""
import os
import subprocess
import sys

import numpy as np
import pytest

from src.data import radar_storms, rain_cells
from src.data.radar_storms import BACKGROUND_DBZ, MAX_DBZ, MIN_ECHO_DBZ, RadarStorms, main
from src.data.sequences import open_sequence_file, open_sequences
from src.errors import UserError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N, T, SIZE = 16, 20, 96


@pytest.fixture(scope="module")
def sample():
    """16 default-sized sequences (96x96, 20 frames) as (N, T, H, W) float64 dBZ, and their generator."""
    generator = RadarStorms(N, seed=5)
    return generator, generator.block(0, N)[:, :, 0].astype(np.float64)


def test_deterministic_and_random_access():
    a = RadarStorms(6, num_frames=8, size=32, seed=3)
    b = RadarStorms(50, num_frames=8, size=32, seed=3)  # a longer dataset holds the same first sequences
    assert a.block(0, 6).tobytes() == b.block(0, 6).tobytes()
    np.testing.assert_array_equal(a.sequence(4), b.block(4, 5)[0])
    assert not np.array_equal(a.sequence(0), RadarStorms(6, num_frames=8, size=32, seed=4).sequence(0))
    assert not np.array_equal(a.sequence(0), a.sequence(1))
    with pytest.raises(IndexError):
        a.sequence(6)


def test_shape_dtype_and_range(sample):
    generator, frames = sample
    assert generator.block(0, 1).dtype == np.float32 and generator.shape == (N, T, 1, SIZE, SIZE)
    assert frames.shape == (N, T, SIZE, SIZE) and np.isfinite(frames).all()
    assert frames.min() == BACKGROUND_DBZ and frames.max() <= MAX_DBZ
    echo = frames[frames > BACKGROUND_DBZ]
    assert echo.min() >= MIN_ECHO_DBZ  # below the detection floor is no echo, nothing in between


def test_event_fractions_make_thresholds_meaningful(sample):
    """20 and 35 dBZ events are neither absent nor everywhere, over the set and in most sequences."""
    _, frames = sample
    above20, above35 = (frames >= 20).mean(), (frames >= 35).mean()
    assert 0.05 < above20 < 0.40 and 0.005 < above35 < 0.12 and above35 < above20
    per_sequence = (frames >= 20).mean(axis=(1, 2, 3))
    assert (per_sequence > 0).mean() >= 0.9 and (per_sequence < 0.8).all()


# ---------------------------------------------------------------- motion: a rotation about a pivot off the frame

def _complex_grid(size):
    rows, cols = np.mgrid[:size, :size].astype(np.float64)
    return cols + 1j * rows  # x + i y of every pixel


def _sample_at(frame, where):
    """``frame`` (H, W) read at the complex positions ``where`` (bilinear); NaN outside the frame."""
    from scipy.ndimage import map_coordinates

    inside = (where.real >= 0) & (where.real <= frame.shape[1] - 1) & (where.imag >= 0) \
        & (where.imag <= frame.shape[0] - 1)
    values = map_coordinates(frame, [where.imag, where.real], order=1, mode="nearest")
    return np.where(inside, values, np.nan)


def _rotated_back(generator, index, steps):
    """Where the point at each pixel came from ``steps`` frames earlier under the planned rotation (complex)."""
    pivot, omega = generator.motion(index)
    centre = pivot[1] + 1j * pivot[0]
    return centre + np.exp(-1j * omega * steps) * (_complex_grid(generator.size) - centre)


def _correlation(a, b):
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep] - a[keep].mean(), b[keep] - b[keep].mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_the_plan_turns_about_a_pivot_off_the_frame(sample):
    generator, _ = sample
    half_diagonal = SIZE / np.sqrt(2.0)
    omegas = []
    for i in range(N):
        pivot, omega = generator.motion(i)
        centre = (SIZE - 1) / 2.0
        distance = np.hypot(pivot[0] - centre, pivot[1] - centre)
        speed = np.hypot(*generator.velocity(i))
        assert distance > half_diagonal and 1.0 <= speed <= 2.5
        assert abs(omega) * distance == pytest.approx(speed)  # the centre moves at omega x its distance
        omegas.append(omega)
    assert min(np.abs(omegas)) > 0.003 and min(omegas) < 0 < max(omegas)  # both senses of rotation


RATE_FACTORS = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)  # candidate angular velocities, in units of the planned one


def _turned_back(velocity, omega, steps, size):
    """Where each pixel's content was ``steps`` frames earlier under a rotation at ``omega`` whose motion at the
    frame centre is ``velocity`` (complex); omega 0: the translation by that velocity."""
    grid = _complex_grid(size)
    if omega == 0:
        return grid - velocity * steps
    pivot = (size - 1) / 2.0 * (1 + 1j) + 1j * velocity / omega  # i omega (centre - pivot) = velocity
    return pivot + np.exp(-1j * omega * steps) * (grid - pivot)


def test_the_frames_turn_at_the_planned_angular_velocity(sample):
    """Among motions that all move the frame centre at the planned velocity, turning at 0 (a translation),
    -1, -0.5, 0.5, 1, 1.5 or 2 times the planned angular velocity, the one that best carries frame t onto
    frame t + 4 is (near) the planned one: the frames turn, in the planned sense, at about the planned rate."""
    generator, frames = sample
    steps, best = 4, []
    for i in range(N):
        _, omega = generator.motion(i)
        vy, vx = generator.velocity(i)
        scores = [np.mean([_correlation(frames[i, t + steps],
                                        _sample_at(frames[i, t], _turned_back(vx + 1j * vy, f * omega, steps, SIZE)))
                           for t in range(0, T - steps, 2)]) for f in RATE_FACTORS]
        best.append(RATE_FACTORS[int(np.argmax(scores))])
    best = np.array(best)
    assert np.isin(best, (0.5, 1.0, 1.5)).mean() >= 0.85 and (best == 1.0).mean() >= 0.5, best


# ---------------------------------------------------------------- growth and decay, texture, borders, cells

def test_the_whole_field_grows_and_decays(sample):
    """The trends of each frame's echo area and mean dBZ follow the planned gain across sequences, both ways."""
    generator, frames = sample
    times = np.arange(T)

    def trend(curves):  # (N, T) -> (N,) least-squares slope per frame
        return np.array([np.polyfit(times, curve, 1)[0] for curve in curves])

    planned = trend([generator.gain_db(i, times) for i in range(N)])  # dB per frame
    mean_dbz = trend(frames.mean(axis=(2, 3)))
    area = trend((frames > BACKGROUND_DBZ).mean(axis=(2, 3)))
    assert mean_dbz.min() < -0.2 and mean_dbz.max() > 0.2  # some decay, some grow
    assert np.corrcoef(area, planned)[0, 1] > 0.75 and np.corrcoef(mean_dbz, planned)[0, 1] > 0.5


def _detail(frame, sigma=2.0):
    """The small scales of a frame: the frame minus its Gaussian blur."""
    from scipy.ndimage import gaussian_filter

    return frame - gaussian_filter(frame, sigma)


def test_texture_changes_beyond_being_carried(sample):
    """With the motion undone exactly (the planned rotation), the small scales of frame t + s still differ more
    from frame t's the larger s is: the texture evolves, it is not only advected."""
    generator, frames = sample
    by_steps = {1: [], 6: []}
    for i in range(N):
        for steps in by_steps:
            for t in (2, 8):
                carried = _sample_at(_detail(frames[i, t]), _rotated_back(generator, i, steps))
                later = _detail(frames[i, t + steps])
                echo = (frames[i, t + steps] > 15)  # inside the echo, away from its edges
                by_steps[steps].append(_correlation(np.where(echo, later, np.nan), carried))
    near, far = np.mean(by_steps[1]), np.mean(by_steps[6])
    assert near > 0.8 and far < 0.7 and far < near - 0.3, (near, far)  # frozen texture: 0.98, 0.81


def test_echo_enters_across_the_borders(sample):
    """A good share of the last frame's echo sits on points of the field that were outside the first frame."""
    generator, frames = sample
    shares = []
    for i in range(N):
        origin = _rotated_back(generator, i, T - 1)  # where each pixel of the last frame was at frame 0
        outside = (origin.real < 0) | (origin.real > SIZE - 1) | (origin.imag < 0) | (origin.imag > SIZE - 1)
        echo = frames[i, -1] >= 20
        shares.append((echo & outside).sum() / max(1, echo.sum()))
    assert np.mean(shares) > 0.2 and np.mean(np.array(shares) > 0) >= 0.7


def test_cells_form_and_dissipate_inside_the_frame(sample):
    """Strong echo (>= 35 dBZ) appears within 3 frames where the field, followed by the planned motion, had
    less than 20 dBZ inside the frame, and disappears likewise: cells form and dissipate, not only move."""
    generator, frames = sample
    formed = dissipated = 0
    for i in range(N):
        back = _rotated_back(generator, i, 3)
        inner = (back.real > 8) & (back.real < SIZE - 9) & (back.imag > 8) & (back.imag < SIZE - 9)
        for t in range(0, T - 3, 2):
            before = _sample_at(frames[i, t], back)  # frame t at where each pixel of frame t + 3 was
            formed += np.count_nonzero(inner & (frames[i, t + 3] >= 35) & (before < 20)) > 20
            pivot, omega = generator.motion(i)  # forwards: where each pixel of frame t goes
            centre = pivot[1] + 1j * pivot[0]
            ahead = centre + np.exp(1j * omega * 3) * (_complex_grid(SIZE) - centre)
            after = _sample_at(frames[i, t + 3], ahead)
            dissipated += np.count_nonzero((frames[i, t] >= 35) & (after < 20)) > 20
    assert formed >= N and dissipated >= N  # more than once per sequence on average


def test_second_channel_is_the_smoothed_previous_frame():
    one = RadarStorms(2, num_frames=6, size=32, channels=1, seed=1).block(0, 2)
    two = RadarStorms(2, num_frames=6, size=32, channels=2, seed=1).block(0, 2)
    assert two.shape == (2, 6, 2, 32, 32)
    np.testing.assert_array_equal(two[:, :, 0], one[:, :, 0])  # channel 0 does not depend on channels
    from src.data.rain_cells import _gaussian_blur_matrix

    blur = _gaussian_blur_matrix(32, rain_cells.SMOOTH_SIGMA)
    expected = blur @ one[:, :-1, 0].astype(np.float64) @ blur.T  # (N, T-1, H, W)
    np.testing.assert_allclose(two[:, 1:, 1], expected, atol=1e-3)


# ---------------------------------------------------------------- the command line

def test_cli_writes_one_file_readable_with_the_rain_recipe(tmp_path, capsys):
    out = tmp_path / "storms"
    assert main([str(out), "--num_sequences", "3", "--num_frames", "6", "--size", "16", "--seed", "2"]) == 0
    assert sorted(os.listdir(out)) == ["storms.npy"]
    written = np.load(str(out / "storms.npy"))
    np.testing.assert_array_equal(written, RadarStorms(3, 6, 16, 1, 2).block(0, 3))
    printed = capsys.readouterr().out
    assert ">= 35 dBZ" in printed and "storms.npy --data_layout NTCHW --data_scale minmax" in printed
    source = open_sequence_file(str(out / "storms.npy"), "NTCHW", 3, 3, scale="minmax", data_min=-10, data_max=60)
    np.testing.assert_allclose(source.normalization.denormalize(source[2][1]), written[2, 3:], atol=1e-4)


def test_cli_splits_directory_as_rain_cells_does(tmp_path):
    out = tmp_path / "storms"
    main([str(out), "--num_sequences", "10", "--num_frames", "5", "--size", "16", "--splits", "true"])
    assert sorted(os.listdir(out)) == ["test.npy", "train.npy", "val.npy"]
    parts = [np.load(str(out / f"{name}.npy")) for name in ("train", "val", "test")]
    assert [len(p) for p in parts] == [8, 1, 1]
    np.testing.assert_array_equal(np.concatenate(parts), RadarStorms(10, 5, 16, 1, 0).block(0, 10))
    assert len(open_sequences(str(out), "NTCHW", 3, 2, scale="minmax", data_min=-10, data_max=60).train) == 8


@pytest.mark.parametrize("argv, expected", [
    ([], "missing OUT_DIR"),
    (["out", "--frames", "3"], "unknown option --frames"),
    (["out", "--channels", "3"], "--channels must be 1 or 2"),
])
def test_bad_arguments(tmp_path, argv, expected):
    argv = [str(tmp_path / a) if a == "out" else a for a in argv]
    with pytest.raises(UserError, match=expected) as caught:
        main(argv)
    assert "src.data.radar_storms" in str(caught.value) or expected != "missing OUT_DIR"


def test_command_line_error_is_one_line():
    result = subprocess.run([sys.executable, "-m", "src.data.radar_storms"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: missing OUT_DIR") and result.stderr.count("\n") == 1
    assert "python -m src.data.radar_storms OUT_DIR" in result.stderr
