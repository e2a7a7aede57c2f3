"""Same-wall-clock PyTorch peer: OpenSTL's ConvLSTM training procedure on this recipe's data and clock.

Usage (from the repository root; needs ``pip install -r bench/requirements.txt``):

    python bench/torch_openstl.py [--minutes 11.55] [--eval_at 6,...] [--test_sequences 256]
                                  [--autocast bf16|none] [--loss_frames all|output]
                                  [--sampling on|off] [--max_lr 0.002] [--config_path C]

What is the same as ``bench/cpu_quality.sh`` (``configs/cpu_small.yaml``):
the training batches (for global step s: epoch ``s // steps_per_epoch`` of ``train_source``, the
recipe's seed and digits, batch 8; past the recipe's 2,000 steps it goes on to epochs 8, 9, ...),
the widths (two cells of 32 channels, 3x3 kernels, 4x4 patches), the held-out test set
(``generated_test_source``: 256 sequences seeded by ``test_seed``, never trained or selected on), the
metrics and baselines (``src.evaluation.evaluate``, ``baseline_predictor``), and the clock: training
runs for ``--minutes`` of wall time (the recipe's training wall time, start-up and compilation
included); evaluations at ``--eval_at`` minutes are not counted.

What is OpenSTL's (Tan et al. 2023, configs/mmnist/ConvLSTM.py and its ConvLSTM model; written
here from the published description): a stack of ConvLSTM cells with separate input and state
convolutions, gates i, f, g, o, forget bias 1.0, no normalisation; a 1x1 convolution without bias
and without activation maps the top hidden state to the next frame; the loss is the MSE on all 19
next frames; scheduled sampling feeds the true frame at output positions 11..19 with probability
eta, falling linearly from 1 to 0 over 40 % of training (OpenSTL: 50,000 of 125,000 iterations, 200
epochs of 10,000 sequences at batch 16); Adam with a one-cycle schedule (warm-up 30 %, cosine,
start lr/25, end lr/25/1e4). Here the schedules run on the clock's fraction instead of iterations
(the step count is not known in advance). ``--max_lr`` 2e-3 (OpenSTL: 5e-4 for 200 epochs) was fixed
before any measurement and is not tuned. Test predictions are clipped to [0, 1].

Prints one line per evaluation:
``minutes: X steps: N mse: .. below_zeros: ..% ssim: .. (zeros mse .., copy_last mse ..)``.
The measured rows are in bench/README.md ("Same-wall-clock PyTorch peer"). Asserts nothing.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from src.config import frame_shape, load_config  # noqa: E402
from src.data.pipeline import generated_test_source, global_index, load_digits, read_batch, train_source  # noqa: E402
from src.evaluation import baseline_predictor, evaluate  # noqa: E402

DEFAULT_CONFIG = os.path.join(REPO, "configs", "cpu_small.yaml")
SAMPLING_FRACTION = 0.4  # OpenSTL: sampling_stop_iter 50,000 of 125,000 iterations
FORGET_BIAS = 1.0


class ConvLSTMCell(nn.Module):
    """OpenSTL-style cell: conv_x(x) + conv_h(h) -> i, f, g, o."""

    def __init__(self, in_channels, hidden, kernel):
        super().__init__()
        self.hidden = hidden
        self.conv_x = nn.Conv2d(in_channels, 4 * hidden, kernel, padding=kernel // 2)
        self.conv_h = nn.Conv2d(hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x, h, c):
        i, f, g, o = torch.split(self.conv_x(x) + self.conv_h(h), self.hidden, dim=1)  # 4 x (B, hidden, h, w)
        c = torch.sigmoid(f + FORGET_BIAS) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class StackedConvLSTM(nn.Module):
    """Frames (B, T, C, H, W) -> the T-1 next frames, one step at a time over patch grids."""

    def __init__(self, channels, hidden, kernel, patch):
        super().__init__()
        self.patch = patch
        patched = channels * patch * patch
        widths = [patched] + list(hidden)
        self.cells = nn.ModuleList(ConvLSTMCell(widths[i], widths[i + 1], kernel) for i in range(len(hidden)))
        self.conv_last = nn.Conv2d(hidden[-1], patched, 1, bias=False)

    def forward(self, frames, input_frames, true_mask=None):
        """``true_mask`` (B, T_out - 1) of 0/1: where to feed the true frame instead of the prediction at output
        positions 1..T_out-1 (None: always the prediction, as at test time)."""
        b, t = frames.shape[:2]
        x = F.pixel_unshuffle(frames.flatten(0, 1), self.patch).unflatten(0, (b, t))  # (B, T, C*p*p, H/p, W/p)
        zeros = x.new_zeros((b, 1) + x.shape[3:])
        h = [zeros.expand(b, cell.hidden, *x.shape[3:]) for cell in self.cells]
        c = list(h)
        outputs, x_gen = [], None
        for step in range(t - 1):
            if step < input_frames:
                net = x[:, step]
            elif true_mask is None:
                net = x_gen
            else:
                m = true_mask[:, step - input_frames, None, None, None]  # (B, 1, 1, 1)
                net = m * x[:, step] + (1 - m) * x_gen
            for k, cell in enumerate(self.cells):
                h[k], c[k] = cell(net if k == 0 else h[k - 1], h[k], c[k])
            x_gen = self.conv_last(h[-1])  # (B, C*p*p, H/p, W/p)
            outputs.append(x_gen)
        return F.pixel_shuffle(torch.stack(outputs, 1).flatten(0, 1), self.patch).unflatten(0, (b, t - 1))


def one_cycle_lr(fraction, max_lr, warmup=0.3, div=25.0, final_div=1e4):
    """OpenSTL's one-cycle (cosine) learning rate at ``fraction`` of training."""
    def cosine(start, end, p):
        return end + (start - end) * (1 + math.cos(math.pi * min(max(p, 0.0), 1.0))) / 2
    start = max_lr / div
    if fraction < warmup:
        return cosine(start, max_lr, fraction / warmup)
    return cosine(max_lr, start / final_div, (fraction - warmup) / (1 - warmup))


def sampling_eta(fraction):
    """Probability of feeding the true frame: 1 -> 0 linearly over the first SAMPLING_FRACTION of training."""
    return max(0.0, 1.0 - fraction / SAMPLING_FRACTION)


def training_batch(cfg, step, cache):
    """The recipe's batch of global step ``step``: (B, T_in + T_out, C, H, W) float32."""
    epoch, j = divmod(step, cfg.steps_per_epoch)
    if cache.get("epoch") != epoch:
        cache.update(epoch=epoch, source=train_source(cfg, cache["digits"], epoch))
    inputs, targets = read_batch(cache["source"], global_index(j, 0, 1, cfg.batch_size, np.arange(cfg.batch_size)))
    return torch.from_numpy(np.concatenate([inputs, targets], axis=1))


def autocast(kind):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=kind == "bf16")


def train_step(model, optimizer, frames, cfg, args, eta, rng):
    """One Adam step on one batch; returns the loss (float)."""
    t_in, t_out = cfg.input_frames, cfg.output_frames
    if args.sampling == "on":
        mask = torch.from_numpy((rng.random((frames.shape[0], t_out - 1)) < eta).astype(np.float32))
    else:
        mask = torch.zeros((frames.shape[0], t_out - 1))  # always the network's own prediction
    with autocast(args.autocast):
        pred = model(frames, t_in, mask).float()  # (B, T-1, C, H, W)
    truth = frames[:, 1:]
    if args.loss_frames == "output":
        pred, truth = pred[:, t_in - 1:], truth[:, t_in - 1:]
    loss = F.mse_loss(pred, truth)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def predictor(model, cfg, kind):
    """numpy inputs (B, T_in, C, H, W) -> numpy predictions (B, T_out, C, H, W) in [0, 1]."""
    def predict(inputs):
        b = inputs.shape[0]
        frames = torch.from_numpy(np.concatenate([inputs, np.zeros((b, cfg.output_frames) + inputs.shape[2:],
                                                                   np.float32)], axis=1))
        with torch.no_grad(), autocast(kind):
            pred = model(frames, cfg.input_frames).float()[:, cfg.input_frames - 1:]
        return pred.clamp(0, 1).numpy()
    return predict


def parse(argv):
    p = argparse.ArgumentParser(prog="torch_openstl.py", description="OpenSTL's ConvLSTM procedure in PyTorch on this recipe's data and clock")
    p.add_argument("--config_path", default=DEFAULT_CONFIG)
    p.add_argument("--minutes", type=float, default=11.55, help="training wall time (default: the recipe's 693 s)")
    p.add_argument("--eval_at", default="", help="comma-separated minutes at which to evaluate as well (default: none)")
    p.add_argument("--test_sequences", type=int, default=256)
    p.add_argument("--autocast", choices=("bf16", "none"), default="bf16")
    p.add_argument("--loss_frames", choices=("all", "output"), default="all",
                   help="all: MSE on the 19 next frames (OpenSTL); output: on the 10 predicted frames only")
    p.add_argument("--sampling", choices=("on", "off"), default="on", help="scheduled sampling (OpenSTL: on)")
    p.add_argument("--max_lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.test_sequences < 1 or args.max_lr <= 0 or args.threads < 1:
        p.error("--minutes, --max_lr must be > 0; --test_sequences, --threads >= 1")
    try:
        args.eval_at = sorted(float(m) for m in args.eval_at.split(",") if m.strip())
    except ValueError:
        p.error(f"--eval_at: not a comma-separated list of minutes: {args.eval_at!r}")
    if any(not 0 < m < args.minutes for m in args.eval_at):
        p.error(f"--eval_at: every point must lie inside (0, --minutes {args.minutes:g})")
    return args


def score_line(minutes, steps, result, baselines):
    zeros = baselines["zeros"]["mse"]
    return (f"minutes: {minutes:.2f} steps: {steps} mse: {result['mse']:.2f} "
            f"below_zeros: {100 * (1 - result['mse'] / zeros):.1f}% ssim: {result['ssim']:.4f} "
            f"mae: {result['mae']:.2f} ssim_openstl: {result['ssim_openstl']:.4f} psnr: {result['psnr']:.2f} "
            f"(zeros mse {zeros:.2f}, copy_last mse {baselines['copy_last']['mse']:.2f})")


def main(argv=None):
    start = time.perf_counter()
    args = parse(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    cfg = load_config(["--config_path", args.config_path])
    t_eval = time.perf_counter()
    test = generated_test_source(cfg, load_digits(cfg, "val"), args.test_sequences)
    baselines = {kind: evaluate(cfg, baseline_predictor(kind, cfg.output_frames), test, progress=False)
                 for kind in ("zeros", "copy_last")}
    paused = time.perf_counter() - t_eval  # evaluations are off the clock; start-up is on it, as in the recipe
    model = StackedConvLSTM(frame_shape(cfg)[0], cfg.hidden_channels, cfg.kernel_size, cfg.patch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=one_cycle_lr(0.0, args.max_lr))
    budget, step = args.minutes * 60, 0
    cache = {"digits": load_digits(cfg, "train")}
    pending = list(args.eval_at) + [args.minutes]
    while pending:
        elapsed = time.perf_counter() - start - paused
        if elapsed >= pending[0] * 60:
            t_eval = time.perf_counter()
            model.eval()
            result = evaluate(cfg, predictor(model, cfg, args.autocast), test, progress=False)
            model.train()
            print(score_line(elapsed / 60, step, result, baselines), flush=True)
            pending.pop(0)
            paused += time.perf_counter() - t_eval
            continue
        fraction = elapsed / budget
        for group in optimizer.param_groups:
            group["lr"] = one_cycle_lr(fraction, args.max_lr)
        loss = train_step(model, optimizer, training_batch(cfg, step, cache), cfg, args, sampling_eta(fraction), rng)
        if not math.isfinite(loss):
            raise SystemExit(f"torch_openstl.py: the loss became {loss} at step {step}; lower --max_lr")
        step += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
