"""Rain-cell generator: determinism, value range, event fractions, learnable motion, atomic CLI."""
import os
import subprocess
import sys

import numpy as np
import pytest

from src.data import rain_cells
from src.data.rain_cells import BACKGROUND_DBZ, MAX_DBZ, RainCells, main, write_dataset
from src.data.sequences import open_sequence_file, open_sequences
from src.errors import UserError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def sample():
    """16 default-sized sequences (96x96, 20 frames) and their generator."""
    generator = RainCells(16, seed=5)
    return generator, generator.block(0, 16)


def test_deterministic_and_random_access():
    a = RainCells(6, num_frames=8, size=32, seed=3)
    b = RainCells(50, num_frames=8, size=32, seed=3)  # a longer dataset holds the same first sequences
    np.testing.assert_array_equal(a.block(0, 6), b.block(0, 6))
    np.testing.assert_array_equal(a.sequence(4), b.block(4, 5)[0])
    assert not np.array_equal(a.sequence(0), RainCells(6, num_frames=8, size=32, seed=4).sequence(0))
    assert not np.array_equal(a.sequence(0), a.sequence(1))
    with pytest.raises(IndexError):
        a.sequence(6)


def test_shape_dtype_and_range(sample):
    generator, block = sample
    assert block.shape == (16, 20, 1, 96, 96) == generator.shape and block.dtype == np.float32
    assert block.min() == BACKGROUND_DBZ and block.max() <= MAX_DBZ
    assert np.isfinite(block).all()


def test_event_fractions_make_thresholds_meaningful(sample):
    """20 and 35 dBZ events are neither absent nor everywhere, over the set and in most sequences."""
    _, block = sample
    reflectivity = block[:, :, 0]  # (N, T, H, W)
    above20, above35 = (reflectivity >= 20).mean(), (reflectivity >= 35).mean()
    assert 0.05 < above20 < 0.40 and 0.005 < above35 < 0.12 and above35 < above20
    per_sequence = (reflectivity >= 20).mean(axis=(1, 2, 3))
    assert (per_sequence > 0).mean() >= 0.9 and (per_sequence < 0.8).all()


def _correlation(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _motion_scores(frames, shift):
    """Mean over t of corr(frame t+1, frame t moved by ``shift`` px), on the interior (no wrap-around)."""
    inner = slice(10, -10)
    scores = [_correlation(frames[t + 1][inner, inner], np.roll(frames[t], shift, axis=(0, 1))[inner, inner])
              for t in range(len(frames) - 1)]
    return float(np.mean(scores))


def test_frames_move_with_the_sequence_velocity(sample):
    """Frame t+1 matches frame t shifted by the sequence's velocity better than unshifted or shifted back."""
    generator, block = sample
    wins = 0
    for i in range(len(block)):
        shift = tuple(int(v) for v in np.round(generator.velocity(i)))  # (dy, dx) px per frame
        backwards = tuple(-s for s in shift)
        frames = block[i, :, 0]
        moved, still, back = (_motion_scores(frames, s) for s in (shift, (0, 0), backwards))
        wins += moved > still and moved > back
    assert wins >= 0.9 * len(block)
    speeds = np.hypot(*np.array([generator.velocity(i) for i in range(16)]).T)
    assert speeds.min() >= 1.0 and speeds.max() <= 2.5


def test_second_channel_is_the_smoothed_previous_frame():
    one = RainCells(2, num_frames=6, size=32, channels=1, seed=1).block(0, 2)
    two = RainCells(2, num_frames=6, size=32, channels=2, seed=1).block(0, 2)
    assert two.shape == (2, 6, 2, 32, 32)
    np.testing.assert_array_equal(two[:, :, 0], one[:, :, 0])  # channel 0 does not depend on channels
    blur = rain_cells._gaussian_blur_matrix(32, rain_cells.SMOOTH_SIGMA)
    expected = blur @ one[:, :-1, 0].astype(np.float64) @ blur.T  # (N, T-1, H, W)
    np.testing.assert_allclose(two[:, 1:, 1], expected, atol=1e-3)
    assert two[:, :, 1].std() < two[:, :, 0].std()  # smoother


def _listing(directory):
    return sorted(os.listdir(directory))


def test_cli_writes_one_file_readable_as_own_data(tmp_path, capsys):
    out = tmp_path / "rain"
    assert main([str(out), "--num_sequences", "3", "--num_frames", "6", "--size", "16", "--seed", "2"]) == 0
    assert _listing(out) == ["rain.npy"]
    written = np.load(str(out / "rain.npy"))
    np.testing.assert_array_equal(written, RainCells(3, 6, 16, 1, 2).block(0, 3))
    printed = capsys.readouterr().out
    assert ">= 20 dBZ" in printed and "--data_layout NTCHW" in printed
    source = open_sequence_file(str(out / "rain.npy"), "NTCHW", 3, 3, scale="minmax", data_min=-10, data_max=60)
    np.testing.assert_allclose(source.normalization.denormalize(source[2][1]), written[2, 3:], atol=1e-4)


def test_cli_splits_directory(tmp_path):
    out = tmp_path / "rain"
    main([str(out), "--num_sequences", "10", "--num_frames", "5", "--size", "16", "--channels", "2",
          "--splits", "true"])
    assert _listing(out) == ["test.npy", "train.npy", "val.npy"]
    parts = [np.load(str(out / f"{name}.npy")) for name in ("train", "val", "test")]
    assert [len(p) for p in parts] == [8, 1, 1]
    np.testing.assert_array_equal(np.concatenate(parts), RainCells(10, 5, 16, 2, 0).block(0, 10))
    splits = open_sequences(str(out), "NTCHW", 3, 2, scale="minmax", data_min=-10, data_max=60)
    assert splits.channels == 2 and len(splits.train) == 8


def test_existing_data_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "rain"
    args = [str(out), "--num_sequences", "2", "--num_frames", "3", "--size", "8"]
    main(args)
    before = (out / "rain.npy").read_bytes()
    with pytest.raises(UserError, match="already exists"):
        main(args + ["--seed", "9"])
    assert (out / "rain.npy").read_bytes() == before
    main(args + ["--seed", "9", "--overwrite", "true"])
    assert (out / "rain.npy").read_bytes() != before and _listing(out) == ["rain.npy"]


def test_failed_write_leaves_the_old_file_and_no_temporaries(tmp_path, monkeypatch):
    out = tmp_path / "rain"
    main([str(out), "--num_sequences", "2", "--num_frames", "3", "--size", "8"])
    before = (out / "rain.npy").read_bytes()

    def disk_full(self, start, stop):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RainCells, "block", disk_full)
    with pytest.raises(UserError, match="No space left on device"):
        write_dataset(str(out), RainCells(2, 3, 8, seed=7), overwrite=True)
    assert (out / "rain.npy").read_bytes() == before and _listing(out) == ["rain.npy"]


@pytest.mark.parametrize("argv, expected", [
    ([], "missing OUT_DIR"),
    (["out", "--frames", "3"], "unknown option --frames"),
    (["out", "--size", "big"], "--size: expected int"),
    (["out", "--channels", "3"], "--channels must be 1 or 2"),
    (["out", "--num_sequences", "4", "--splits", "true"], "at least one sequence per split"),
])
def test_bad_arguments(tmp_path, argv, expected):
    argv = [str(tmp_path / a) if a == "out" else a for a in argv]
    with pytest.raises(UserError, match=expected):
        main(argv)


def test_command_line_error_is_one_line():
    result = subprocess.run([sys.executable, "-m", "src.data.rain_cells"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: missing OUT_DIR") and result.stderr.count("\n") == 1
