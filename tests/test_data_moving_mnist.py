"""Moving MNIST generator: trajectories, bounces, determinism, composition and frame order."""
import numpy as np
import pytest

from src.data.moving_mnist import STEP, MovingMNIST, bounce_trajectory


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
        ids, positions, _ = source.layout(i)
        assert positions.shape == (3, 20, 2) and ids.shape == (3,)
        assert positions.min() >= 0 and positions.max() <= free
        step = np.abs(np.diff(positions, axis=1)).max()
        assert step <= np.ceil(STEP * free) + 1  # about 0.1 of the free range per frame


def test_start_positions_cover_the_range():
    source = MovingMNIST(_random_digits(), 300, 1, seed=0)
    starts = np.array([source.layout(i)[1][0, 0] for i in range(300)])  # (300, 2) pixels
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
    """Independent re-composition from layout(): per-frame maximum of the pasted digits."""
    digits = _random_digits()
    source = MovingMNIST(digits, 3, 3, image_size=64, seed=2)
    ids, positions, _ = source.layout(1)
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
        _, positions, _ = source.layout(i)
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
        _, positions, _ = source.layout(i)
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
