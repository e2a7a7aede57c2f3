"""Random-access, seeded, on-the-fly Moving MNIST sequence generator.

The generator follows the published template: digits of size d on an S x S canvas move in
the free range [0, S - d] (in pixels). A position is kept in unit coordinates u in [0, 1]
(pixel = floor(u * (S - d))); it starts uniform, moves in a direction drawn uniformly from
[0, 2*pi) by ``STEP`` = 0.1 of the free range per frame, and on reaching a wall the velocity
component flips and the position is clamped to the wall. Digits are combined with an
element-wise maximum.

Sequence ``i`` of epoch ``e`` is generated from ``np.random.default_rng((seed, e, i))``, so
any worker, process or rank computes the same sequence for the same index without any
shared state, and every epoch sees fresh sequences.
"""
import numpy as np

STEP = 0.1  # distance moved per frame, as a fraction of the free range


def bounce_trajectory(start, velocity, num_frames, step=STEP):
    """Unit-box trajectories of bouncing points.

    start: (D, 2) positions in [0, 1]; velocity: (D, 2) unit direction vectors.
    Returns ``(positions, velocities)``, both (D, num_frames, 2) float64: frame 0 is at the
    start, frame t+1 = frame t + step * velocity(t), then reflected and clamped at the walls;
    ``velocities[:, t]`` is the velocity used to move from frame t to t+1.
    """
    pos = np.array(start, dtype=np.float64)
    vel = np.array(velocity, dtype=np.float64)
    positions = np.empty((len(pos), num_frames, 2))
    velocities = np.empty((len(pos), num_frames, 2))
    for t in range(num_frames):
        positions[:, t] = pos
        velocities[:, t] = vel
        pos = pos + step * vel
        low, high = pos <= 0.0, pos >= 1.0
        vel = np.where(low | high, -vel, vel)
        pos = np.clip(pos, 0.0, 1.0)
    return positions, velocities


def to_pixels(positions, free_range):
    """Unit positions (..., 2) -> integer top-left pixel offsets (..., 2) (x, y) in [0, free_range]."""
    return np.floor(positions * free_range).astype(np.int64)


class MovingMNIST:
    """Random-access source of Moving MNIST sequences.

    ``source[i] -> (inputs, targets)``: inputs are frames 0..T_in-1 as (T_in, 1, H, W) float32
    in [0, 1], targets the next frames T_in..T_in+T_out-1 as (T_out, 1, H, W).
    """

    def __init__(self, digits, num_sequences, num_digits, input_frames=10, output_frames=10, image_size=64,
                 seed=0, epoch=0):
        digits = np.asarray(digits)
        if digits.ndim != 3 or digits.shape[1] != digits.shape[2] or len(digits) == 0:
            raise ValueError(f"digits must be a non-empty (N, d, d) array, got shape {digits.shape}")
        if digits.shape[1] > image_size:
            raise ValueError(f"digit size {digits.shape[1]} does not fit in image_size {image_size}")
        if num_sequences < 0 or num_digits < 1 or input_frames < 1 or output_frames < 1:
            raise ValueError("num_sequences >= 0, num_digits >= 1 and frame counts >= 1 are required")
        self.digits = digits
        self.num_sequences = int(num_sequences)
        self.num_digits = int(num_digits)
        self.input_frames = int(input_frames)
        self.output_frames = int(output_frames)
        self.num_frames = self.input_frames + self.output_frames
        self.image_size = int(image_size)
        self.digit_size = int(digits.shape[1])
        self.free_range = self.image_size - self.digit_size
        self.seed = int(seed)
        self.epoch = int(epoch)
        # uint8 digits are scaled once per paste; float digits are taken as already in [0, 1]
        self._scale = 1.0 / 255.0 if digits.dtype == np.uint8 else 1.0

    def __len__(self):
        return self.num_sequences

    def _check_index(self, index):
        if not 0 <= index < self.num_sequences:
            raise IndexError(f"sequence index {index} out of range [0, {self.num_sequences})")

    def _rng(self, index):
        return np.random.default_rng((self.seed, self.epoch, int(index)))

    def layout(self, index):
        """How sequence ``index`` is made: ``(digit_ids (D,), positions (D, T, 2) int pixels (x, y),
        velocities (D, T, 2))``."""
        self._check_index(index)
        rng = self._rng(index)
        digit_ids = rng.integers(0, len(self.digits), size=self.num_digits)
        start = rng.random((self.num_digits, 2))  # (D, 2) unit x, y
        theta = rng.random(self.num_digits) * 2.0 * np.pi
        direction = np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (D, 2)
        unit_pos, velocities = bounce_trajectory(start, direction, self.num_frames)
        return digit_ids, to_pixels(unit_pos, self.free_range), velocities

    def sequence(self, index):
        """All frames of sequence ``index``: (T_in + T_out, H, W) float32 in [0, 1]."""
        digit_ids, positions, _ = self.layout(index)
        size, d = self.image_size, self.digit_size
        frames = np.zeros((self.num_frames, size, size), dtype=np.float32)  # (T, H, W)
        for k, digit_id in enumerate(digit_ids):
            glyph = self.digits[digit_id].astype(np.float32) * self._scale  # (d, d)
            for t in range(self.num_frames):
                x, y = positions[k, t]
                window = frames[t, y:y + d, x:x + d]
                np.maximum(window, glyph, out=window)
        return frames

    def __getitem__(self, index):
        frames = self.sequence(index)[:, None]  # (T, 1, H, W)
        return frames[:self.input_frames], frames[self.input_frames:]
