"""Random-access, seeded Moving MNIST: as in the published template, digits move ``STEP`` of the free range
[0, S - d] per frame from uniform starts in uniform directions, bounce off the walls and combine by maximum.
Sequence ``i`` of epoch ``e`` comes from ``default_rng((seed, e, i))`` alone: the same in any batch or rank.
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from src.data.sequences import BatchSource, checked_indices

STEP = 0.1  # distance moved per frame, as a fraction of the free range


def bounce_trajectory(start, velocity, num_frames, step=STEP):
    """Unit-box ``(positions, velocities)`` (D, num_frames, 2) from ``start`` along ``velocity`` (D, 2),
    reflected and clamped at the walls; velocities[:, t] leads to frame t+1."""
    pos = np.array(start, dtype=np.float64)
    vel = np.array(velocity, dtype=np.float64)
    positions, velocities = np.empty((2, len(pos), num_frames, 2))
    for t in range(num_frames):
        positions[:, t] = pos
        velocities[:, t] = vel
        pos = pos + step * vel
        vel = np.where((pos <= 0.0) | (pos >= 1.0), -vel, vel)
        pos = np.clip(pos, 0.0, 1.0)
    return positions, velocities


def paste_max(canvas, glyphs, offsets):
    """Max-paste glyph b (B, d, d) into every frame of sequence b of ``canvas`` (B, T, H, W) at top-left
    ``offsets`` (B, T, 2) (x, y), in place: one fancy index into a strided view of all d x d windows
    (exact, as each frame receives one window)."""
    batch, frames, height, width = canvas.shape
    d = glyphs.shape[-1]
    s_b, s_t, s_y, s_x = canvas.strides
    windows = as_strided(canvas, shape=(batch, frames, height - d + 1, width - d + 1, d, d),
                         strides=(s_b, s_t, s_y, s_x, s_y, s_x))  # (B, T, y, x, d, d) views into canvas
    seq = np.arange(batch)[:, None]  # (B, 1)
    frame = np.arange(frames)[None, :]  # (1, T)
    x, y = offsets[..., 0], offsets[..., 1]  # (B, T) each
    current = windows[seq, frame, y, x]  # (B, T, d, d) copy
    windows[seq, frame, y, x] = np.maximum(current, glyphs[:, None])


class MovingMNIST(BatchSource):
    """Random-access Moving MNIST: ``source[i] -> (inputs (T_in, 1, H, W), targets (T_out, 1, H, W))`` float32 in
    [0, 1]; ``source.batch(indices)`` stacks many at once."""

    def __init__(self, digits, num_sequences, num_digits, input_frames=10, output_frames=10, image_size=64,
                 seed=0, epoch=0):
        digits = np.asarray(digits)
        if digits.ndim != 3 or digits.shape[1] != digits.shape[2] or len(digits) == 0:
            raise ValueError(f"digits must be a non-empty (N, d, d) array, got shape {digits.shape}")
        if digits.shape[1] > image_size:
            raise ValueError(f"digit size {digits.shape[1]} does not fit in image_size {image_size}")
        if num_sequences < 0 or num_digits < 1 or input_frames < 1 or output_frames < 1:
            raise ValueError("num_sequences >= 0, num_digits >= 1 and frame counts >= 1 are required")
        self.digits, self.num_sequences, self.num_digits = digits, int(num_sequences), int(num_digits)
        self.input_frames, self.output_frames = int(input_frames), int(output_frames)
        self.num_frames = self.input_frames + self.output_frames
        self.image_size, self.digit_size = int(image_size), int(digits.shape[1])
        self.free_range = self.image_size - self.digit_size
        self.seed, self.epoch = int(seed), int(epoch)
        # uint8 digits are scaled once per paste; float digits are taken as already in [0, 1]
        self._scale = 1.0 / 255.0 if digits.dtype == np.uint8 else 1.0

    def __len__(self):
        return self.num_sequences

    def layouts(self, indices):
        """``(digit_ids (B, D), positions (B, D, T, 2) int pixels (x, y), velocities (B, D, T, 2))`` of
        sequences ``indices``; each one's generator draws digit ids, starts, then directions."""
        indices = np.asarray(indices)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise TypeError(f"sequence indices must be a 1-D sequence of integers, got {indices!r}")
        indices = checked_indices(indices, self.num_sequences, "sequence index")
        count, num_digits = len(indices), self.num_digits
        digit_ids = np.empty((count, num_digits), dtype=np.int64)
        start = np.empty((count, num_digits, 2))  # unit x, y
        turn = np.empty((count, num_digits))  # direction as a fraction of a full turn
        for row, index in enumerate(indices):
            rng = np.random.default_rng((self.seed, self.epoch, int(index)))
            digit_ids[row] = rng.integers(0, len(self.digits), size=num_digits)
            start[row] = rng.random((num_digits, 2))
            turn[row] = rng.random(num_digits)
        theta = turn * 2.0 * np.pi
        direction = np.stack([np.cos(theta), np.sin(theta)], axis=-1)  # (B, D, 2)
        unit_pos, velocities = bounce_trajectory(start.reshape(-1, 2), direction.reshape(-1, 2), self.num_frames)
        pixels = np.floor(unit_pos * self.free_range).astype(np.int64)  # top-left (x, y) in [0, free_range]
        shape = (count, num_digits, self.num_frames, 2)
        return digit_ids, pixels.reshape(shape), velocities.reshape(shape)

    def batch(self, indices):  # -> (inputs (B, T_in, 1, H, W), targets (B, T_out, 1, H, W)) float32
        digit_ids, positions, _ = self.layouts(indices)
        count, size, t_in = len(digit_ids), self.image_size, self.input_frames
        glyphs = self.digits[digit_ids].astype(np.float32) * self._scale  # (B, D, d, d)
        inputs = np.zeros((count, t_in, 1, size, size), dtype=np.float32)
        targets = np.zeros((count, self.output_frames, 1, size, size), dtype=np.float32)
        for canvas, frames in ((inputs, slice(0, t_in)), (targets, slice(t_in, None))):
            for k in range(self.num_digits):
                paste_max(canvas[:, :, 0], glyphs[:, k], positions[:, k, frames])
        return inputs, targets

    def sequence(self, index):  # -> (T_in + T_out, H, W) float32
        inputs, targets = self.batch([index])
        return np.concatenate([inputs[0, :, 0], targets[0, :, 0]])  # (T, H, W)
