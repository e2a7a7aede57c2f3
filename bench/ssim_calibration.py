"""What does a prediction have to look like to beat blank frames on SSIM?

Scores degraded copies of the TRUE future frames (Gaussian blur, a shift of every frame, a
dimmed copy) with the project's metrics, next to predicting all-zero frames, on the same
held-out set as ``bench/cpu_quality.sh`` (or on ``mnist_test_seq.npy`` with
``--dataset mnist --data_path DIR``). It puts a trained model's MSE and SSIM on one scale: a
model whose errors are like a blur of sigma s or a misplacement of d pixels scores about the
row of that degradation. Prints a table; asserts nothing. Usage (from the repository root):

    python bench/ssim_calibration.py [--config_path FILE (default configs/cpu_small.yaml)] [--num_sequences 256]
                                     [--key value ...]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from src.cli import run_cli  # noqa: E402
from src.config import keys_help, load_config  # noqa: E402
from src.data.pipeline import iterate_batches  # noqa: E402
from src.evaluation import build_source  # noqa: E402
from src.metrics import StreamingMetrics  # noqa: E402

DEFAULT_SEQUENCES = 256  # the held-out set of bench/cpu_quality.sh
BLUR_SIGMAS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
SHIFTS = (1, 2, 3, 4)
DIM_FACTORS = (0.5,)


def blur(frames, sigma):
    """Gaussian blur of every frame. frames (B, T, 1, H, W) in [0, 1] -> same shape."""
    from skimage.filters import gaussian  # pylint: disable=import-outside-toplevel

    out = gaussian(frames, sigma=(0, 0, 0, sigma, sigma), mode="constant", preserve_range=True)  # H, W only
    return out.astype(np.float32)


def shift(frames, pixels):
    """Move every frame ``pixels`` to the right and ``pixels`` down (zero fill): a misplacement of
    pixels * sqrt(2). frames (B, T, 1, H, W) -> same shape."""
    out = np.zeros_like(frames)
    out[..., pixels:, pixels:] = frames[..., :frames.shape[-2] - pixels, :frames.shape[-1] - pixels]
    return out


def degradations():
    """(name, function of the true frames) rows, in table order."""
    rows = [("predict all-zero frames", np.zeros_like), ("truth (perfect prediction)", lambda y: y)]
    rows += [(f"truth, Gaussian blur sigma {s:g} px", lambda y, s=s: blur(y, s)) for s in BLUR_SIGMAS]
    rows += [(f"truth moved by ({d}, {d}) px", lambda y, d=d: shift(y, d)) for d in SHIFTS]
    rows += [(f"truth x {f:g} (dimmed)", lambda y, f=f: y * np.float32(f)) for f in DIM_FACTORS]
    return rows


def calibrate(source, batch_size=32):
    """Averages {'mse', 'mae', 'ssim', 'psnr'} of every degradation over ``source``."""
    rows = degradations()
    meters = [StreamingMetrics() for _ in rows]
    for _, _, targets in iterate_batches(source, batch_size):
        for (_, degrade), meter in zip(rows, meters):
            meter.update(degrade(targets), targets)
    return [(name, meter.result()) for (name, _), meter in zip(rows, meters)]


def format_rows(results):
    lines = ["| predictor | MSE/frame | MAE/frame | SSIM | PSNR |", "|---|---:|---:|---:|---:|"]
    for name, r in results:
        lines.append(f"| {name} | {r['mse']:.2f} | {r['mae']:.2f} | {r['ssim']:.4f} | {r['psnr']:.2f} |")
    return "\n".join(lines)


def main(argv):
    # the config defaults to configs/cpu_small.yaml (src.config.DEFAULT_CONFIG), as for bench/cpu_quality.sh
    if not any(a == "--num_sequences" or a.startswith("--num_sequences=") for a in argv):
        argv = list(argv) + ["--num_sequences", str(DEFAULT_SEQUENCES)]
    cfg = load_config(argv)
    source, data = build_source(cfg)
    print(f"set: {data['description']} ({len(source)} sequences)")
    print(format_rows(calibrate(source)))


if __name__ == "__main__":
    run_cli(main, sys.argv[1:], config_keys=keys_help)
