"""Moving MNIST generator: trajectories, bounces, determinism, composition and frame order."""
import numpy as np
import pytest

from src.data.moving_mnist import STEP, MovingMNIST, bounce_trajectory
from tests.data_files import sequence_layout

# ---------------------------------------------------------------- the per-digit, per-frame reference
# The generator as first written (one paste per digit and frame, one trajectory step per loop
# iteration), kept here unchanged: the vectorised generator must reproduce it bit for bit.


def _reference_trajectory(start, velocity, num_frames, step=0.1):
    pos = np.array(start, dtype=np.float64)
    vel = np.array(velocity, dtype=np.float64)
    positions = np.empty((len(pos), num_frames, 2))
    for t in range(num_frames):
        positions[:, t] = pos
        pos = pos + step * vel
        low, high = pos <= 0.0, pos >= 1.0
        vel = np.where(low | high, -vel, vel)
        pos = np.clip(pos, 0.0, 1.0)
    return positions


def _reference_sequence(digits, num_digits, num_frames, image_size, seed, epoch, index):
    """Frames (T, H, W) float32 of sequence ``index``, drawn from default_rng((seed, epoch, index))."""
    rng = np.random.default_rng((seed, epoch, index))
    digit_ids = rng.integers(0, len(digits), size=num_digits)
    start = rng.random((num_digits, 2))
    theta = rng.random(num_digits) * 2.0 * np.pi
    direction = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    d = digits.shape[1]
    positions = np.floor(_reference_trajectory(start, direction, num_frames) * (image_size - d)).astype(np.int64)
    scale = 1.0 / 255.0 if digits.dtype == np.uint8 else 1.0
    frames = np.zeros((num_frames, image_size, image_size), dtype=np.float32)
    for k, digit_id in enumerate(digit_ids):
        glyph = digits[digit_id].astype(np.float32) * scale
        for t in range(num_frames):
            x, y = positions[k, t]
            window = frames[t, y:y + d, x:x + d]
            np.maximum(window, glyph, out=window)
    return frames


def _dot_digits(count=1, size=28):
    """Digits whose only ink is their top-left pixel, with a distinct value per digit: the lit
    pixel of a frame is then exactly the digit's position."""
    digits = np.zeros((count, size, size), np.uint8)
    digits[:, 0, 0] = 255 - np.arange(count)
    return digits


def _random_digits(count=20):
    return np.random.default_rng(1).integers(0, 256, size=(count, 28, 28), dtype=np.uint8)


def test_bounce_trajectory_follows_the_rule():
    rng = np.random.default_rng(0)
    theta = rng.random(200) * 2 * np.pi
    vel0 = np.stack([np.cos(theta), np.sin(theta)], 1)
    pos, vel = bounce_trajectory(rng.random((200, 2)), vel0, 30)
    assert pos.shape == vel.shape == (200, 30, 2)
    assert pos.min() >= 0.0 and pos.max() <= 1.0
    moved = pos[:, :-1] + STEP * vel[:, :-1]
    hit = (moved <= 0.0) | (moved >= 1.0)
    np.testing.assert_allclose(pos[:, 1:], np.clip(moved, 0.0, 1.0))
    np.testing.assert_array_equal(vel[:, 1:], np.where(hit, -vel[:, :-1], vel[:, :-1]))
    assert hit.sum() > 100  # the test saw plenty of bounces


def test_bounce_at_a_wall():
    pos, vel = bounce_trajectory([[0.05, 0.5]], [[-1.0, 0.0]], 3)
    np.testing.assert_allclose(pos[0, :, 0], [0.05, 0.0, 0.1])  # clamped at the wall, then back
    np.testing.assert_allclose(vel[0, :, 0], [-1.0, 1.0, 1.0])
    np.testing.assert_allclose(pos[0, :, 1], 0.5)


@pytest.mark.parametrize("image_size", [64, 32, 48])
def test_digits_stay_in_frame(image_size):
    source = MovingMNIST(_random_digits(), 200, 3, image_size=image_size, seed=4)
    free = image_size - 28
    for i in range(len(source)):
        ids, positions, _ = sequence_layout(source, i)
        assert positions.shape == (3, 20, 2) and ids.shape == (3,)
        assert positions.min() >= 0 and positions.max() <= free
        step = np.abs(np.diff(positions, axis=1)).max()
        assert step <= np.ceil(STEP * free) + 1  # about 0.1 of the free range per frame


def test_start_positions_cover_the_range():
    source = MovingMNIST(_random_digits(), 300, 1, seed=0)
    starts = np.array([sequence_layout(source, i)[1][0, 0] for i in range(300)])  # (300, 2) pixels
    assert starts.min() <= 3 and starts.max() >= 33  # uniform over [0, 36]
    assert abs(starts.mean() - 18) < 3


def test_item_shapes_dtype_and_range():
    source = MovingMNIST(_random_digits(), 5, 2, input_frames=7, output_frames=4, image_size=48)
    inputs, targets = source[3]
    assert inputs.shape == (7, 1, 48, 48) and targets.shape == (4, 1, 48, 48)
    assert inputs.dtype == np.float32 and targets.dtype == np.float32
    frames = np.concatenate([inputs, targets])
    assert frames.min() >= 0.0 and frames.max() <= 1.0 and frames.max() > 0.9
    assert len(source) == 5


def test_index_out_of_range():
    source = MovingMNIST(_random_digits(), 4, 2)
    with pytest.raises(IndexError):
        source[4]
    with pytest.raises(IndexError):
        source[-1]


def test_deterministic_per_seed_epoch_index():
    digits = _random_digits()
    a = MovingMNIST(digits, 10, 2, seed=7, epoch=3)
    b = MovingMNIST(digits, 50, 2, seed=7, epoch=3)  # another length, other access order
    later = b.sequence(9)
    np.testing.assert_array_equal(a.sequence(9), later)
    np.testing.assert_array_equal(a.sequence(0), b.sequence(0))
    assert not np.array_equal(a.sequence(9), a.sequence(8))
    assert not np.array_equal(a.sequence(9), MovingMNIST(digits, 10, 2, seed=7, epoch=4).sequence(9))
    assert not np.array_equal(a.sequence(9), MovingMNIST(digits, 10, 2, seed=8, epoch=3).sequence(9))


def test_frames_are_the_max_of_the_digits():
    """Independent re-composition from sequence_layout(): per-frame maximum of the pasted digits."""
    digits = _random_digits()
    source = MovingMNIST(digits, 3, 3, image_size=64, seed=2)
    ids, positions, _ = sequence_layout(source, 1)
    expected = np.zeros((20, 64, 64), np.float32)
    for t in range(20):
        for k in range(3):
            x, y = positions[k, t]
            canvas = np.zeros((64, 64), np.float32)
            canvas[y:y + 28, x:x + 28] = digits[ids[k]] / 255.0
            expected[t] = np.maximum(expected[t], canvas)
    np.testing.assert_allclose(source.sequence(1), expected, atol=1e-6)


def test_digit_count_per_frame():
    source = MovingMNIST(_dot_digits(5), 30, 3, seed=1)
    for i in range(len(source)):
        frames = source.sequence(i)
        _, positions, _ = sequence_layout(source, i)
        for t in range(20):
            distinct = len({tuple(p) for p in positions[:, t]})
            assert (frames[t] > 0).sum() == distinct


def _dot_track(frames):
    """(T, H, W) frames with one lit pixel each -> (T, 2) x, y of that pixel."""
    flat = frames.reshape(len(frames), -1).argmax(axis=1)
    y, x = np.unravel_index(flat, frames.shape[1:])
    return np.stack([x, y], 1)


def test_inputs_are_the_first_frames_and_targets_the_next():
    """Would catch an input/target swap: the dot must follow the trajectory from frame 0 on."""
    source = MovingMNIST(_dot_digits(1), 20, 1, input_frames=10, output_frames=10, seed=3)
    for i in range(len(source)):
        inputs, targets = source[i]
        _, positions, _ = sequence_layout(source, i)
        np.testing.assert_array_equal(_dot_track(inputs[:, 0]), positions[0, :10])
        np.testing.assert_array_equal(_dot_track(targets[:, 0]), positions[0, 10:])
        full = source.sequence(i)
        np.testing.assert_array_equal(inputs[:, 0], full[:10])
        np.testing.assert_array_equal(targets[:, 0], full[10:])


def test_rejects_bad_digits():
    with pytest.raises(ValueError):
        MovingMNIST(np.zeros((3, 28, 20), np.uint8), 2, 1)
    with pytest.raises(ValueError):
        MovingMNIST(np.zeros((3, 40, 40), np.uint8), 2, 1, image_size=32)


def _digit_set(kind, count=40, size=28):
    """Glyph sets of the dtypes the generator accepts: uint8 (scaled by 1/255) and floats in [0, 1]."""
    rng = np.random.default_rng(11)
    ink = rng.random((count, size, size)) < 0.3  # sparse ink with exact zeros around it, like MNIST
    if kind == "uint8":
        return (ink * rng.integers(1, 256, size=ink.shape)).astype(np.uint8)
    return (ink * rng.random(ink.shape)).astype(kind)


# (digit dtype, digits per sequence, seed, epoch, image size, input frames, output frames)
REFERENCE_CASES = [("uint8", 1, 0, 0, 64, 10, 10), ("uint8", 2, 7, 3, 64, 10, 10), ("uint8", 3, 20150613, 0, 48, 6, 4),
                   ("float32", 2, 5, 11, 64, 10, 10), ("float64", 3, 1, 2, 32, 3, 9)]


def _bits(frames):
    return np.ascontiguousarray(frames, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("kind, num_digits, seed, epoch, size, t_in, t_out", REFERENCE_CASES)
def test_items_match_the_reference_bit_for_bit(kind, num_digits, seed, epoch, size, t_in, t_out):
    digits = _digit_set(kind)
    source = MovingMNIST(digits, 1000, num_digits, input_frames=t_in, output_frames=t_out, image_size=size,
                         seed=seed, epoch=epoch)
    for index in range(0, 1000, 5):  # 200 indices
        want = _reference_sequence(digits, num_digits, t_in + t_out, size, seed, epoch, index)
        inputs, targets = source[index]
        assert inputs.shape == (t_in, 1, size, size) and targets.shape == (t_out, 1, size, size)
        np.testing.assert_array_equal(_bits(inputs[:, 0]), _bits(want[:t_in]))
        np.testing.assert_array_equal(_bits(targets[:, 0]), _bits(want[t_in:]))
        np.testing.assert_array_equal(_bits(source.sequence(index)), _bits(want))


@pytest.mark.parametrize("kind, num_digits, seed, epoch, size, t_in, t_out", REFERENCE_CASES)
def test_batches_match_the_reference_bit_for_bit(kind, num_digits, seed, epoch, size, t_in, t_out):
    """Any batch composition (order, repeats, size) gives each sequence exactly as the reference."""
    digits = _digit_set(kind)
    source = MovingMNIST(digits, 1000, num_digits, input_frames=t_in, output_frames=t_out, image_size=size,
                         seed=seed, epoch=epoch)
    indices = np.random.default_rng(seed).permutation(1000)[:300]
    indices[-1] = indices[0]  # the same sequence twice in one batch
    for start, stop in ((0, 8), (8, 9), (9, 200), (200, 300)):
        inputs, targets = source.batch(indices[start:stop])
        assert inputs.shape == (stop - start, t_in, 1, size, size) and inputs.dtype == np.float32
        assert targets.shape == (stop - start, t_out, 1, size, size) and targets.dtype == np.float32
        for row, index in enumerate(indices[start:stop]):
            want = _reference_sequence(digits, num_digits, t_in + t_out, size, seed, epoch, index)
            np.testing.assert_array_equal(_bits(inputs[row, :, 0]), _bits(want[:t_in]))
            np.testing.assert_array_equal(_bits(targets[row, :, 0]), _bits(want[t_in:]))


def test_batch_layouts_match_single_layouts():
    source = MovingMNIST(_random_digits(), 50, 3, seed=2, epoch=1)
    ids, positions, velocities = source.layouts([4, 17, 4])
    assert ids.shape == (3, 3) and positions.shape == velocities.shape == (3, 3, 20, 2)
    for row, index in enumerate([4, 17, 4]):
        one = sequence_layout(source, index)
        np.testing.assert_array_equal(ids[row], one[0])
        np.testing.assert_array_equal(positions[row], one[1])
        np.testing.assert_array_equal(velocities[row], one[2])


def test_batch_edge_cases():
    source = MovingMNIST(_random_digits(), 6, 2, image_size=32)
    inputs, targets = source.batch([])
    assert inputs.shape == (0, 10, 1, 32, 32) and targets.shape == (0, 10, 1, 32, 32)
    assert inputs.flags.c_contiguous and targets.flags.c_contiguous
    with pytest.raises(IndexError, match="sequence index 6 out of range"):
        source.batch([0, 6])
    with pytest.raises(IndexError, match="sequence index -1"):
        source.batch(np.array([-1]))
    with pytest.raises(TypeError):
        source.batch([[0, 1]])
    with pytest.raises(TypeError):
        source.batch([0.5])
