"""Reader for the published Moving MNIST test set ``mnist_test_seq.npy``.

The file holds uint8 frames in the layout (T=20, N=10000, H=64, W=64): time first, then the
sequence. It is memory-mapped and converted one sequence at a time, so evaluating the first
K sequences costs only K sequences of memory.
"""
import os

import numpy as np

from src.data.idx import array_file_kind, check_data_file
from src.errors import DataError

TEST_FILE = "mnist_test_seq.npy"
_GET = "run `bash download.sh DATA_DIR` to fetch it, or copy mnist_test_seq.npy there by hand"
_FIX = "re-run `bash download.sh DATA_DIR` to fetch a good copy"


def resolve_test_file(data_path):
    """A directory -> its mnist_test_seq.npy; a file path -> itself. DataError if missing."""
    if os.path.isdir(data_path):
        path = os.path.join(data_path, TEST_FILE)
        if not os.path.isfile(path):
            raise DataError(f"{TEST_FILE} not found in data_path {data_path}; {_GET}")
        return path
    if not os.path.exists(data_path):
        raise DataError(f"data_path {data_path} does not exist; point it at the directory holding {TEST_FILE} "
                        f"({_GET})")
    return data_path


def _open_array(path):
    """Memory-map an .npy file, turning every way it can be broken into a one-line DataError."""
    check_data_file(path, _GET)
    kind, head = array_file_kind(path)
    if kind != "npy":
        what = {"empty": "empty", "npz": "an .npz/zip archive",
                "pickle": "a Python pickle (refused: loading pickles can run code)"}.get(
            kind, f"not an .npy file (starts with {head!r})")
        raise DataError(f"{path} is {what}; expected a uint8 .npy array of shape (20, N, 64, 64); {_FIX}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        if "object" in str(err).lower() or "pickle" in str(err).lower():
            raise DataError(f"{path} holds pickled Python objects, not uint8 frames; refusing to load it "
                            f"(pickles can run code); {_FIX}") from None
        raise DataError(f"{path} is not a readable .npy file ({err}; truncated download?); {_FIX}") from None
    except (OSError, EOFError) as err:
        raise DataError(f"{path} is not a readable .npy file ({err}; truncated download?); {_FIX}") from None


def _validate(array, path, num_frames, image_size):
    if array.dtype != np.uint8:
        raise DataError(f"{path}: dtype {array.dtype}, expected uint8 frames of shape (20, N, 64, 64); {_FIX}")
    if array.ndim != 4:
        raise DataError(f"{path}: shape {array.shape}, expected 4 dimensions (T, N, H, W) like (20, 10000, 64, 64); "
                        f"{_FIX}")
    frames, count, height, width = array.shape
    if frames < num_frames:
        raise DataError(f"{path}: sequences have {frames} frames, fewer than input_frames + output_frames = "
                        f"{num_frames} (layout must be time first: (T, N, H, W))")
    if count == 0:
        raise DataError(f"{path}: holds no sequences (shape {array.shape}); {_FIX}")
    if height != width or (image_size and height != image_size):
        want = f"{image_size}x{image_size}" if image_size else "square"
        raise DataError(f"{path}: frames are {height}x{width}, expected {want} (shape {array.shape}; set "
                        f"image_size to match the file)")


class TestSequences:
    """Random-access view of the test set: ``source[i] -> (inputs, targets)``.

    inputs = frames 0..T_in-1 as (T_in, 1, H, W) float32 in [0, 1]; targets = the following
    T_out frames. ``num_sequences`` = K > 0 keeps the first K sequences. ``image_size``, when
    given, must equal the frame size in the file.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, path, num_sequences=0, input_frames=10, output_frames=10, image_size=None):
        self.path = path
        self.input_frames = int(input_frames)
        self.output_frames = int(output_frames)
        self.num_frames = self.input_frames + self.output_frames
        self._array = _open_array(path)  # (T, N, H, W) uint8, memory-mapped
        _validate(self._array, path, self.num_frames, image_size)
        total = self._array.shape[1]
        if num_sequences < 0 or num_sequences > total:
            raise DataError(f"num_sequences {num_sequences} is more than the {total} sequences in {path}; "
                            f"use 0 (all) or a value <= {total}")
        self.num_sequences = int(num_sequences) or total
        self.image_size = int(self._array.shape[2])

    def __len__(self):
        return self.num_sequences

    def sequence(self, index):
        """Frames 0..T_in+T_out-1 of sequence ``index``: (T, H, W) float32 in [0, 1]."""
        if not 0 <= index < self.num_sequences:
            raise IndexError(f"sequence index {index} out of range [0, {self.num_sequences})")
        frames = np.asarray(self._array[:self.num_frames, int(index)])  # (T, H, W) uint8
        return frames.astype(np.float32) / 255.0

    def __getitem__(self, index):
        frames = self.sequence(index)[:, None]  # (T, 1, H, W)
        return frames[:self.input_frames], frames[self.input_frames:]
