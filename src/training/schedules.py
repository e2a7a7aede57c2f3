"""Learning-rate schedules, computed in Python and passed into the compiled step as an input, so the
rate the optimizer applies is by construction the one the log reports."""
import math


class LRSchedule:
    """constant | cosine | step | plateau, with optional linear warm-up. Only plateau has state (a decay
    factor changed by ``on_validation``, saved in checkpoints via ``state_dict``)."""

    def __init__(self, cfg):
        self.kind, self.base_lr, self.min_lr = cfg.lr_schedule, cfg.lr, cfg.min_lr
        self.steps_per_epoch = cfg.steps_per_epoch
        self.total_steps, self.warmup_steps = cfg.epochs * cfg.steps_per_epoch, cfg.warmup_epochs * cfg.steps_per_epoch
        self.step_epochs, self.gamma, self.patience = cfg.lr_step_epochs, cfg.lr_gamma, cfg.lr_patience
        self.factor, self.best, self.bad_epochs = 1.0, math.inf, 0

    def lr_at(self, epoch, step):
        """Learning rate for optimizer step ``step`` (0-based) of epoch ``epoch`` (0-based)."""
        global_step = epoch * self.steps_per_epoch + step
        if global_step < self.warmup_steps:
            return self.base_lr * (global_step + 1) / self.warmup_steps
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
