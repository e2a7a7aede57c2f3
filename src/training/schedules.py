"""Learning-rate schedules, computed in Python and passed into the compiled step as an input, so the
rate the optimizer applies is by construction the one the log reports."""
import math


ONECYCLE_DIV_FACTOR = 25.0  # PyTorch OneCycleLR defaults (OpenSTL passes only final_div_factor=1e4)
ONECYCLE_FINAL_DIV_FACTOR = 1e4


def _cosine(start, end, fraction):
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1.0)


def onecycle_lr(step, total_steps, max_lr, pct_start=0.3):
    """PyTorch ``OneCycleLR(max_lr, total_steps, pct_start, anneal_strategy="cos", div_factor=25,
    final_div_factor=1e4)`` at 0-based ``step`` (its two phases end at steps pct_start * N - 1 and N - 1)."""
    initial = max_lr / ONECYCLE_DIV_FACTOR
    final = initial / ONECYCLE_FINAL_DIV_FACTOR
    rise_end, fall_end = float(pct_start * total_steps) - 1.0, float(total_steps - 1)
    if step <= rise_end:
        return _cosine(initial, max_lr, step / rise_end) if rise_end > 0 else max_lr
    return _cosine(max_lr, final, min(1.0, (step - rise_end) / (fall_end - rise_end)))


class LRSchedule:
    """constant | cosine | step | plateau | onecycle, with optional linear warm-up (not onecycle). Only plateau has state (a decay
    factor changed by ``on_validation``, saved in checkpoints via ``state_dict``)."""

    def __init__(self, cfg):
        self.kind, self.base_lr, self.min_lr = cfg.lr_schedule, cfg.lr, cfg.min_lr
        self.steps_per_epoch = cfg.steps_per_epoch
        self.total_steps, self.warmup_steps = cfg.epochs * cfg.steps_per_epoch, cfg.warmup_epochs * cfg.steps_per_epoch
        self.step_epochs, self.gamma, self.patience = cfg.lr_step_epochs, cfg.lr_gamma, cfg.lr_patience
        self.factor, self.best, self.bad_epochs = 1.0, math.inf, 0
        self.pct_start = cfg.onecycle_pct_start

    def lr_at(self, epoch, step):
        """Learning rate for optimizer step ``step`` (0-based) of epoch ``epoch`` (0-based)."""
        global_step = epoch * self.steps_per_epoch + step
        if global_step < self.warmup_steps:
            return self.base_lr * (global_step + 1) / self.warmup_steps
        if self.kind == "onecycle":
            return onecycle_lr(global_step, self.total_steps, self.base_lr, self.pct_start)
        if self.kind == "constant":
            return self.base_lr
        if self.kind == "cosine":
            span = max(1, self.total_steps - self.warmup_steps)
            progress = min(1.0, (global_step - self.warmup_steps) / span)
            return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))
        if self.kind == "step":
            return max(self.min_lr, self.base_lr * self.gamma ** (epoch // self.step_epochs))
        if self.kind == "plateau":
            return max(self.min_lr, self.base_lr * self.factor)
        raise ValueError(f"unknown lr_schedule {self.kind!r}")

    def on_validation(self, score):
        """Record an epoch's validation score (lower is better); plateau decays on stagnation."""
        if score < self.best:
            self.best, self.bad_epochs = score, 0
            return
        self.bad_epochs += 1
        if self.kind == "plateau" and self.bad_epochs >= self.patience:
            self.factor, self.bad_epochs = self.factor * self.gamma, 0

    def state_dict(self):
        return {"factor": self.factor, "best": self.best if math.isfinite(self.best) else None,
                "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.factor = float(state["factor"])
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
