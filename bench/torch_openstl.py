"""PyTorch peer: OpenSTL's ConvLSTM training procedure on this recipe's data, for a fixed number of
steps (step-for-step comparisons) or for the recipe's wall clock.

Usage (from the repository root; needs ``pip install -r bench/requirements.txt``):

    python bench/torch_openstl.py --steps 2000 [--eval_at 1000,...] [--seed 1]       # step mode
    python bench/torch_openstl.py [--minutes 11.55] [--eval_at 6,...]                 # clock mode
      [--variant openstl|repo] [--autocast none|bf16] [--cycle_momentum on|off] [--max_lr LR]
      [--loss_frames all|output] [--sampling on|off] [--test_sequences 256] [--threads 2]
      [--log_every 100] [--config_path configs/cpu_small.yaml] [--hidden_channels 32,32] [--kernel_size 3]
      [--patch_size 4] [--batch_size 8] [--steps_per_epoch 250]

Two modes:

- step mode (``--steps N``): exactly N optimizer steps, every schedule fitted to N as OpenSTL fits
  it to its 125,000 iterations: the one-cycle learning rate is PyTorch's
  ``OneCycleLR(max_lr, total_steps=N, final_div_factor=1e4)`` with its defaults (30 % warm-up,
  cosine, start max_lr/25, end max_lr/25/1e4, Adam's beta1 0.95 -> 0.85 -> 0.95), and the
  probability of feeding the true frame is ``1 - (s + 1) / (0.4 N)`` at 0-based step s, 0 from step
  0.4 N on (OpenSTL: ``sampling_stop_iter`` 50,000 of 125,000). ``--eval_at`` takes step counts.
  Defaults: ``--variant openstl --autocast none`` (float32, as OpenSTL trains).
- clock mode (``--minutes M``, the default when ``--steps`` is absent): training runs for M minutes of
  wall time (start-up included, evaluations excluded) and the schedules run on the clock's fraction
  (the step count is not known in advance). ``--eval_at`` takes minutes. Defaults: ``--variant repo
  --autocast bf16`` (the rows measured before step mode existed).

Variants: ``openstl`` is OpenSTL's network (``openstl/models/convlstm_model.py``,
``openstl/modules/convlstm_modules.py``): cell convolutions on x and h without bias, gates i, f, g,
o, no forget bias, a 1x1 output convolution without bias and without activation; max_lr 5e-4,
beta1 cycled. ``repo`` is the earlier peer: the same cell with biases and forget bias 1.0, max_lr
2e-3, beta1 fixed at Adam's 0.9. ``--max_lr`` and ``--cycle_momentum`` override either.

Common to both modes: OpenSTL's loss (MSE on all 19 next frames; ``--loss_frames output`` for the 10
predicted frames only), its scheduled sampling (one Bernoulli draw per sequence and predicted frame;
at steps 11..19 the input is mask * true + (1 - mask) * prediction, the prediction not detached),
Adam without weight decay or clipping. The training batch of global step s is epoch
``s // steps_per_epoch`` of ``src.data.pipeline.train_source`` with the config's ``seed`` (``--seed``
sets it, and seeds torch: weights and sampling masks), exactly what ``train.py --seed S`` reads for
the same config. Tests: ``generated_test_source`` (``--test_sequences`` sequences seeded by the
config's ``test_seed``), scored by ``src.evaluation.evaluate`` (predictions clipped to [0, 1]).

Prints one line per evaluation (``--eval_at`` points and the end), e.g.
``steps: 2000 mse: .. mae: .. ssim: .. psnr: .. below_zeros: ..% s_per_step: .. ssim_openstl: ..
minutes: .. (zeros mse .., copy_last mse ..) variant: openstl autocast: none seed: 1
cycle_momentum: on max_lr: 0.0005``; on stderr, a progress line every ``--log_every`` steps.
Measured rows: bench/README.md ("Same-wall-clock PyTorch peer", "Step mode"). Asserts nothing.
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
from src.errors import UserError, first_line  # noqa: E402
from src.evaluation import baseline_predictor, evaluate  # noqa: E402

DEFAULT_CONFIG = os.path.join(REPO, "configs", "cpu_small.yaml")
SAMPLING_FRACTION = 0.4  # OpenSTL: sampling_stop_iter 50,000 of 125,000 iterations
WARMUP_FRACTION, START_DIV, FINAL_DIV = 0.3, 25.0, 1e4  # OneCycleLR: pct_start, div_factor; OpenSTL's final_div_factor
BETA1_LOW, BETA1_HIGH = 0.85, 0.95  # OneCycleLR's base_momentum, max_momentum (Adam's beta1 when cycled)
VARIANTS = {  # network and optimizer defaults of each variant
    "openstl": dict(bias=False, forget_bias=0.0, max_lr=5e-4, cycle_momentum="on"),
    "repo": dict(bias=True, forget_bias=1.0, max_lr=2e-3, cycle_momentum="off"),
}
CONFIG_OPTIONS = ("seed", "hidden_channels", "kernel_size", "patch_size", "batch_size", "steps_per_epoch")


class ConvLSTMCell(nn.Module):
    """OpenSTL-style cell: conv_x(x) + conv_h(h) -> gates i, f, g, o; ``h = o * tanh(c)``."""

    def __init__(self, in_channels, hidden, kernel, bias, forget_bias):
        super().__init__()
        self.hidden, self.forget_bias = hidden, forget_bias
        self.conv_x = nn.Conv2d(in_channels, 4 * hidden, kernel, padding=kernel // 2, bias=bias)
        self.conv_h = nn.Conv2d(hidden, 4 * hidden, kernel, padding=kernel // 2, bias=bias)

    def forward(self, x, h, c):
        i, f, g, o = torch.split(self.conv_x(x) + self.conv_h(h), self.hidden, dim=1)  # 4 x (B, hidden, h, w)
        c = torch.sigmoid(f + self.forget_bias) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class StackedConvLSTM(nn.Module):
    """Frames (B, T, C, H, W) -> the T-1 next frames, one step at a time over patch grids."""

    def __init__(self, channels, hidden, kernel, patch, variant="openstl"):
        super().__init__()
        self.patch = patch
        patched = channels * patch * patch
        widths = [patched] + list(hidden)
        spec = VARIANTS[variant]
        self.cells = nn.ModuleList(ConvLSTMCell(widths[i], widths[i + 1], kernel, spec["bias"], spec["forget_bias"])
                                   for i in range(len(hidden)))
        self.conv_last = nn.Conv2d(hidden[-1], patched, 1, bias=False)

    def forward(self, frames, input_frames, true_mask=None):
        """``true_mask`` (B, T - 1 - input_frames) of 0/1: where to feed the true frame instead of the
        prediction at steps input_frames..T-2 (None: always the prediction, as at test time)."""
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
                net = m * x[:, step] + (1 - m) * x_gen  # the prediction is not detached (OpenSTL)
            for k, cell in enumerate(self.cells):
                h[k], c[k] = cell(net if k == 0 else h[k - 1], h[k], c[k])
            x_gen = self.conv_last(h[-1])  # (B, C*p*p, H/p, W/p)
            outputs.append(x_gen)
        return F.pixel_shuffle(torch.stack(outputs, 1).flatten(0, 1), self.patch).unflatten(0, (b, t - 1))


def _cosine(start, end, p):
    """From ``start`` (p = 0) to ``end`` (p = 1) along half a cosine (OneCycleLR's anneal_strategy 'cos')."""
    return end + (start - end) * (1 + math.cos(math.pi * p)) / 2


def one_cycle_at_step(step, total_steps, max_lr):
    """(lr, beta1) that ``OneCycleLR(max_lr, total_steps, final_div_factor=1e4)`` (defaults otherwise) sets
    for the update of 0-based step ``step``: phase 1 ends at step 0.3 N - 1, phase 2 at N - 1."""
    start, end = max_lr / START_DIV, max_lr / START_DIV / FINAL_DIV
    warm_end, last = float(WARMUP_FRACTION * total_steps) - 1, total_steps - 1
    if step <= warm_end:
        p = step / warm_end
        return _cosine(start, max_lr, p), _cosine(BETA1_HIGH, BETA1_LOW, p)
    p = (step - warm_end) / (last - warm_end)
    return _cosine(max_lr, end, p), _cosine(BETA1_LOW, BETA1_HIGH, p)


def one_cycle_at_fraction(fraction, max_lr):
    """(lr, beta1) of the same cycle at ``fraction`` of a training whose step count is not known (clock mode)."""
    start, end = max_lr / START_DIV, max_lr / START_DIV / FINAL_DIV
    fraction = min(max(fraction, 0.0), 1.0)
    if fraction < WARMUP_FRACTION:
        p = fraction / WARMUP_FRACTION
        return _cosine(start, max_lr, p), _cosine(BETA1_HIGH, BETA1_LOW, p)
    p = (fraction - WARMUP_FRACTION) / (1 - WARMUP_FRACTION)
    return _cosine(max_lr, end, p), _cosine(BETA1_LOW, BETA1_HIGH, p)


def sampling_eta_at_step(step, total_steps):
    """Probability of feeding the true frame at 0-based step ``step``: OpenSTL lowers it by 1/stop before each
    draw (``eta -= sampling_changing_rate``) while ``step < stop``, stop = 0.4 N, and sets it to 0 after."""
    stop = SAMPLING_FRACTION * total_steps
    return max(0.0, 1.0 - (step + 1) / stop) if step < stop else 0.0


def sampling_eta_at_fraction(fraction):
    """The same probability at ``fraction`` of a training whose step count is not known (clock mode)."""
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


def sampling_mask(batch, frames, eta, generator):
    """(batch, frames) of 0/1 float32: one Bernoulli(eta) draw per sequence and predicted frame."""
    return (torch.rand((batch, frames), generator=generator) < eta).float()


def train_step(model, optimizer, frames, cfg, args, eta, generator):
    """One Adam step on one batch; returns the loss (float)."""
    t_in, t_out = cfg.input_frames, cfg.output_frames
    if args.sampling == "on":
        mask = sampling_mask(frames.shape[0], t_out - 1, eta, generator)
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
    p = argparse.ArgumentParser(prog="torch_openstl.py",
                                description="OpenSTL's ConvLSTM procedure in PyTorch on this recipe's data")
    p.add_argument("--config_path", default=DEFAULT_CONFIG)
    p.add_argument("--steps", type=int, help="step mode: train exactly this many optimizer steps")
    p.add_argument("--minutes", type=float,
                   help="clock mode (without --steps): training wall time (default: the recipe's 693 s, 11.55)")
    p.add_argument("--eval_at", default="",
                   help="comma-separated points at which to evaluate as well: steps (step mode) or minutes")
    p.add_argument("--variant", choices=tuple(VARIANTS), help="default: openstl in step mode, repo in clock mode")
    p.add_argument("--autocast", choices=("bf16", "none"), help="default: none in step mode, bf16 in clock mode")
    p.add_argument("--cycle_momentum", choices=("on", "off"),
                   help="cycle Adam's beta1 0.95 -> 0.85 -> 0.95 with the lr (default: the variant's)")
    p.add_argument("--max_lr", type=float, help="default: the variant's (openstl 5e-4, repo 2e-3)")
    p.add_argument("--test_sequences", type=int, default=256)
    p.add_argument("--loss_frames", choices=("all", "output"), default="all",
                   help="all: MSE on the 19 next frames (OpenSTL); output: on the 10 predicted frames only")
    p.add_argument("--sampling", choices=("on", "off"), default="on", help="scheduled sampling (OpenSTL: on)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--log_every", type=int, default=100,
                   help="a progress line on stderr every this many steps (0: none)")
    p.add_argument("--seed", help="the config's seed (training data) and torch's seed (default: the config's)")
    for name in CONFIG_OPTIONS[1:]:
        p.add_argument(f"--{name}", help="overrides the config's value" + (" (e.g. 32,32)" if "hidden" in name else ""))
    args = p.parse_args(argv)
    if args.steps is not None and args.minutes is not None:
        p.error("--steps and --minutes: give one (step mode or clock mode)")
    step_mode = args.steps is not None
    if step_mode and args.steps < 1:
        p.error(f"--steps must be >= 1, got {args.steps}")
    if not step_mode:
        args.minutes = 11.55 if args.minutes is None else args.minutes
        if args.minutes <= 0:
            p.error(f"--minutes must be > 0, got {args.minutes:g}")
    args.variant = args.variant or ("openstl" if step_mode else "repo")
    args.autocast = args.autocast or ("none" if step_mode else "bf16")
    spec = VARIANTS[args.variant]
    args.cycle_momentum = args.cycle_momentum or spec["cycle_momentum"]
    args.max_lr = spec["max_lr"] if args.max_lr is None else args.max_lr
    if args.max_lr <= 0 or args.test_sequences < 1 or args.threads < 1 or args.log_every < 0:
        p.error("--max_lr must be > 0; --test_sequences, --threads >= 1; --log_every >= 0")
    args.eval_at = _eval_points(p, args.eval_at, args.steps if step_mode else args.minutes,
                                "steps" if step_mode else "minutes")
    return args


def _eval_points(p, text, end, unit):
    """``--eval_at`` as a sorted list of points inside (0, end), in steps (int) or minutes (float)."""
    kind = int if unit == "steps" else float
    try:
        points = sorted(kind(m) for m in text.split(",") if m.strip())
    except ValueError:
        p.error(f"--eval_at: not a comma-separated list of {unit}: {text!r}")
    if any(not 0 < m < end for m in points):
        p.error(f"--eval_at: every point must lie inside (0, {end:g}) {unit}")
    return points


def run_config(args):
    """The config file with the command line's config options (--seed, widths, batch) applied."""
    overrides = [item for name in CONFIG_OPTIONS if getattr(args, name) is not None
                 for item in (f"--{name}", getattr(args, name))]
    cfg = load_config(["--config_path", args.config_path] + overrides)
    if cfg.dataset not in ("synthetic", "mnist"):
        raise UserError(f"{args.config_path}: dataset {cfg.dataset!r}; this peer trains on generated Moving MNIST "
                        "only: use a config with dataset synthetic or mnist")
    return cfg


def score_line(args, cfg, steps, train_seconds, clock_seconds, result, baselines):
    """One evaluation: s_per_step counts the training steps only (batch generation included); minutes is the
    training wall time with start-up (the clock of clock mode), evaluations excluded."""
    zeros = baselines["zeros"]["mse"]
    return (f"steps: {steps} mse: {result['mse']:.2f} mae: {result['mae']:.2f} ssim: {result['ssim']:.4f} "
            f"psnr: {result['psnr']:.2f} below_zeros: {100 * (1 - result['mse'] / zeros):.1f}% "
            f"s_per_step: {train_seconds / max(1, steps):.3f} ssim_openstl: {result['ssim_openstl']:.4f} "
            f"minutes: {clock_seconds / 60:.2f} (zeros mse {zeros:.2f}, "
            f"copy_last mse {baselines['copy_last']['mse']:.2f}) "
            f"variant: {args.variant} autocast: {args.autocast} seed: {cfg.seed} "
            f"cycle_momentum: {args.cycle_momentum} max_lr: {args.max_lr:g}")


def schedules_now(args, step, clock_seconds):
    """(lr, beta1, eta) for the update of 0-based step ``step``: by step in step mode, by the clock otherwise."""
    if args.steps is not None:
        lr, beta1 = one_cycle_at_step(step, args.steps, args.max_lr)
        return lr, beta1, sampling_eta_at_step(step, args.steps)
    fraction = clock_seconds / (args.minutes * 60)
    lr, beta1 = one_cycle_at_fraction(fraction, args.max_lr)
    return lr, beta1, sampling_eta_at_fraction(fraction)


def set_optimizer(optimizer, lr, beta1):
    """The step's lr and, when cycled, Adam's beta1 (as OneCycleLR writes them into each parameter group)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
        if beta1 is not None:
            group["betas"] = (beta1, group["betas"][1])


def main(argv=None):
    start = time.perf_counter()
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        return train_and_evaluate(args, start)
    except UserError as err:
        raise SystemExit(f"torch_openstl.py: error: {first_line(err)}") from None


def train_and_evaluate(args, start):
    """Train as ``args`` say, printing one score line per evaluation point."""
    torch.set_num_threads(args.threads)
    cfg = run_config(args)
    torch.manual_seed(cfg.seed)  # weights
    masks = torch.Generator().manual_seed(cfg.seed)  # scheduled sampling draws
    t_eval = time.perf_counter()
    test = generated_test_source(cfg, load_digits(cfg, "val"), args.test_sequences)
    baselines = {kind: evaluate(cfg, baseline_predictor(kind, cfg.output_frames), test, progress=False)
                 for kind in ("zeros", "copy_last")}
    paused = time.perf_counter() - t_eval  # evaluations are off the clock; start-up is on it (clock mode)
    model = StackedConvLSTM(frame_shape(cfg)[0], cfg.hidden_channels, cfg.kernel_size, cfg.patch_size, args.variant)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.max_lr)  # betas (0.9, 0.999), no weight decay
    cache = {"digits": load_digits(cfg, "train")}
    step_mode = args.steps is not None
    pending = list(args.eval_at) + [args.steps if step_mode else args.minutes]
    step, train_seconds = 0, 0.0
    while pending:
        clock = time.perf_counter() - start - paused
        if (step >= pending[0]) if step_mode else (clock >= pending[0] * 60):
            t_eval = time.perf_counter()
            model.eval()
            result = evaluate(cfg, predictor(model, cfg, args.autocast), test, progress=False)
            model.train()
            print(score_line(args, cfg, step, train_seconds, clock, result, baselines), flush=True)
            pending.pop(0)
            paused += time.perf_counter() - t_eval
            continue
        t_step = time.perf_counter()
        lr, beta1, eta = schedules_now(args, step, clock)
        set_optimizer(optimizer, lr, beta1 if args.cycle_momentum == "on" else None)
        loss = train_step(model, optimizer, training_batch(cfg, step, cache), cfg, args, eta, masks)
        train_seconds += time.perf_counter() - t_step
        if not math.isfinite(loss):
            raise SystemExit(f"torch_openstl.py: the loss became {loss} at step {step}; lower --max_lr")
        step += 1
        if args.log_every and step % args.log_every == 0:
            print(f"step {step}: loss {loss:.6f} lr {lr:.3g} eta {eta:.3f} s_per_step {train_seconds / step:.3f}",
                  file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
