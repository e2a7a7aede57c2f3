"""Training: epochs, validation, checkpoints, resume. The sequences of step ``s`` on rank ``r`` are a pure
function of (seed, epoch, s, r), so a resumed run sees the data an uninterrupted one would. Every rank
validates on the full set (all take the same early-stopping decisions); only rank 0 writes files."""
import functools
import math
import os
import signal
import sys
import time

import mindspore as ms
import numpy as np
from mindspore import ops

from src.checkpoint import publish_copy, restore_training_state, save_checkpoint
from src.config import read_yaml
from src.data import pipeline
from src.data.split_record import TrainedOn, check_resumed_data
from src.device import effective_amp_level, effective_loss_scale, init_device
from src.errors import ConfigError, TrainingDiverged
from src.evaluation import evaluate
from src.models.flops import network_cost
from src.models.mixed_precision import PredictedFrames, training_forward
from src.models.network import build_network
from src.predictor import BatchPredictor, compiled_forward
from src.progress import Progress, format_duration
from src.training.resume import resume_checkpoint
from src.training.run_dir import RunDir
from src.training.sampling import rank_mask
from src.training.schedules import LRSchedule
from src.training.selection import ExtraScores, FRAME_SCORES, next_best, selection_score
from src.training.step import (build_optimizer, build_train_step, load_loss_scaler_state, loss_scaler_state,
                               make_loss_scaler)


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps (a second Ctrl-C aborts at once)."""

    def __init__(self):
        self.signum, self._previous = None, {}

    def install(self):
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def uninstall(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _handle(self, signum, _frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum
        # not named after signum: MindSpore's runtime installs its own SIGINT handler that re-raises
        # Ctrl-C as SIGTERM, so a Ctrl-C usually arrives here as SIGTERM
        print("\nstop requested (Ctrl-C or SIGTERM): saving a checkpoint after the current step "
              "(press Ctrl-C again to abort without saving)", file=sys.stderr, flush=True)


def waits_each_step(device_target):
    """Whether the loop waits for each step: on CPU, MindSpore 2.8's asynchronous steps run 2.6x slower
    back to back (``bench/loop_overhead.py --wait_each_step false``); on Ascend/GPU the host runs ahead."""
    return device_target == "CPU"


class Trainer:
    """Builds everything from a config and runs ``fit()``: the network, the optimizer, the compiled step (its loss:
    src/training/step.py, losses.py) and the run directory with its checkpoints (:meth:`save`)."""

    def __init__(self, cfg, ctx=None, data=None):
        # data first (pipeline.TrainingData; train.py reads it before MindSpore loads): a bad file is reported
        # before the device starts or the run directory is written
        self.data = data if data is not None else pipeline.TrainingData(cfg)
        cfg = self.data.cfg
        self.cfg = cfg
        self.ctx = ctx or init_device(cfg)
        self.run = RunDir(cfg.output_dir)
        self.resume_path = resume_checkpoint(cfg)
        if cfg.resume == "auto" and not self.resume_path:
            print(f"resume auto: no checkpoint at {self.run.last}, starting a new run", flush=True)
        if self.ctx.is_main:
            # resume auto without last.ckpt (killed before the first save) restarts in the same directory
            self.run.prepare(resume=bool(self.resume_path) or cfg.resume == "auto", overwrite=cfg.overwrite)
        crop = cfg.crop_size  # the training step runs on crops: its cost is theirs
        self._print_header(network_cost(cfg.replace(frame_height=crop, frame_width=crop) if crop else cfg))
        self.val_source = self.data.validation
        ms.set_seed(cfg.seed)
        self.net = build_network(cfg)  # float32 parameters, saved as they are
        # frames -> float32 logits (training: of the loss's frames, reading the sampling mask)
        self.forward = training_forward(self.net, effective_amp_level(cfg), all_frames=cfg.loss_frames == "all")
        self.optimizer = build_optimizer(cfg, self.net)
        loss_scale = effective_loss_scale(cfg)
        self.loss_scaler = make_loss_scaler(loss_scale, cfg.loss_scale_value)
        self.skips_overflows = loss_scale == "dynamic"  # else an overflowing gradient stops the run
        self.train_step = build_train_step(cfg, self.forward, self.optimizer, self.loss_scaler, self.ctx.group_size)
        self.predict = compiled_forward(PredictedFrames(self.forward, cfg.output_activation == "linear"), cfg.mode)
        self._val_predictor = None
        self.schedule = LRSchedule(cfg)

        self.epoch = self.step_in_epoch = 0  # epochs completed, steps of the current epoch already done
        self.best_score, self.best_epoch, self.epochs_without_improvement = math.inf, 0, 0
        self.history = []
        self.epoch_losses = []  # losses of the current epoch's steps so far (read back from the device)
        self.skipped_steps = 0  # steps whose update was skipped because a gradient overflowed
        self._pending = []  # (step, loss, finite) device tensors not yet read back
        self.wait_each_step = waits_each_step(cfg.device_target)
        self.stop = _StopRequest()
        if self.resume_path:
            self._restore(self.resume_path)

    def _print_header(self, cost):
        if not self.ctx.is_main:
            return
        cfg = self.cfg
        print(cfg.describe(), flush=True)
        act_gb = cost["activation_bytes_per_sequence"] * cfg.batch_size / 1e9
        print(f"network: arch={cfg.arch} params={cost['params'] / 1e6:.2f}M "
              f"forward={cost['forward_flops'] / 1e9:.1f} GFLOP/sequence; "
              f"estimated activation memory for batch_size {cfg.batch_size}: {act_gb:.2f} GB per device "
              "(lower --batch_size if this exceeds device memory)", flush=True)
        print(self.data.describe(self.ctx.group_size), flush=True)

    def _restore(self, path):
        meta = restore_training_state(path, self.net, self.optimizer, self.cfg)
        self._check_same_data_parallel_layout(meta, path)
        note = check_resumed_data(TrainedOn(meta.get("data"), path), self.data.record.get("split"))  # own data
        if note and self.ctx.is_main:
            print(f"note: {note}", flush=True)
        for key in ("epoch", "step_in_epoch", "best_epoch", "epochs_without_improvement"):
            setattr(self, key, int(meta[key]))
        self.schedule.load_state_dict(meta["schedule"])
        self._restore_best_score(meta, path)
        self.epoch_losses = [float(v) for v in meta.get("epoch_losses", [])]
        self.skipped_steps = int(meta.get("skipped_steps", 0))
        load_loss_scaler_state(self.loss_scaler, meta.get("loss_scaler", meta.get("loss_scale")))
        self.history = [row for row in self.run.read_history() if row["epoch"] <= self.epoch]
        if self.ctx.is_main:
            print(f"resumed from {path}: {self.epoch} epoch(s) done, continuing at epoch {self.epoch + 1} "
                  f"step {self.step_in_epoch + 1}", flush=True)

    def _check_same_data_parallel_layout(self, meta, path):
        """The sequences of a step depend on the number of ranks and the per-device batch."""
        stored = (meta.get("group_size"), meta.get("batch_size"))
        now = (self.ctx.group_size, self.cfg.batch_size)
        if stored not in ((None, None), now):  # (None, None): written before these were recorded
            raise ConfigError(
                f"checkpoint {path} was trained on {stored[0]} rank(s) with batch_size {stored[1]} per device; this "
                f"run has {now[0]} rank(s) with batch_size {now[1]}; the sequence of each step depends on both, so "
                "resume with the same number of devices and --batch_size (or start a new run)")

    def _global_step(self):
        return self.epoch * self.cfg.steps_per_epoch + self.step_in_epoch

    def _meta(self):
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self._global_step(),
                "best_score": None if math.isinf(self.best_score) else self.best_score,
                "best_metric": self.selection.label,
                "best_epoch": self.best_epoch, "epochs_without_improvement": self.epochs_without_improvement,
                "schedule": self.schedule.state_dict(), "loss_scaler": loss_scaler_state(self.loss_scaler),
                "seed": self.cfg.seed, "group_size": self.ctx.group_size, "batch_size": self.cfg.batch_size,
                "skipped_steps": self.skipped_steps, "epoch_losses": list(self.epoch_losses),
                "data": self.data.record}  # own sequences: frame shape, normalisation, split record

    def save(self, numbered, improved):
        """Write the numbered checkpoint (if due), last.ckpt and best.ckpt; rank 0 only."""
        if not self.ctx.is_main:
            return None
        epoch_label = self.epoch if self.step_in_epoch == 0 else self.epoch + 1
        target = self.run.numbered(epoch_label, self._global_step()) if numbered else self.run.last
        save_checkpoint(target, self.net, self.cfg, self._meta(), self.optimizer)
        if target != self.run.last:
            publish_copy(target, self.run.last)
        if improved:
            publish_copy(target, self.run.best)
        if self.cfg.keep_checkpoints > 0:
            for path in self.run.numbered_checkpoints()[:-self.cfg.keep_checkpoints]:
                os.remove(path)
        return target

    def fit(self, epochs=None):
        """Train until ``epochs`` epochs are done (default, and at most, cfg.epochs; a later ``fit`` continues),
        early stopping, a stop signal or divergence."""
        cfg = self.cfg
        last = cfg.epochs if epochs is None else min(int(epochs), cfg.epochs)
        if self.ctx.is_main:
            self._write_run_config()
        self.net.set_train(True)
        self.stop.install()
        try:
            while self.epoch < last:
                if not self._train_epoch():
                    return 130
                if self._end_epoch():
                    break
        finally:
            self.stop.uninstall()
        if self.ctx.is_main:
            print(f"training finished: {self.epoch} epoch(s); {self._best_text()}; checkpoints in "
                  f"{self.run.ckpt_dir}", flush=True)
        return 0

    def _write_run_config(self):
        """config.yaml = the effective config; a resumed run says which values it changes (e.g. epochs)."""
        if os.path.isfile(self.run.config):
            old = read_yaml(self.run.config)
            changed = [f"{k} {old[k]!r} -> {v!r}" for k, v in self.cfg.to_dict().items() if k in old and old[k] != v]
            if changed:
                print(f"{self.run.config}: updated for this run: {', '.join(changed)}", flush=True)
        self.cfg.save(self.run.config)

    def _train_epoch(self):
        """Run the remaining steps of the current epoch. False if stopped by a signal."""
        cfg = self.cfg
        first = self.step_in_epoch
        if first == 0:
            self.epoch_losses = []
        self._epoch_start = time.perf_counter()
        if first >= cfg.steps_per_epoch:  # stopped after the epoch's last step: only validation is left
            return True
        dataset = pipeline.build_rank_dataset(cfg, self.data.epoch_source(self.epoch, self.ctx.group_size),
                                              self.ctx.rank, self.ctx.group_size, start_step=first)
        progress = Progress(cfg.steps_per_epoch - first, f"epoch {self.epoch + 1}/{cfg.epochs}")
        window_start, window_steps = time.perf_counter(), 0
        for inputs, targets, *valid in dataset.create_tuple_iterator(num_epochs=1):  # valid: with nodata only
            step = self.step_in_epoch
            lr = self.schedule.lr_at(self.epoch, step)
            mask = rank_mask(cfg, self._global_step(), self.ctx.rank, self.ctx.group_size)  # (B, T-2)
            loss, finite = self.train_step(inputs, targets, ms.Tensor(lr, ms.float32), ms.Tensor(mask), *valid)
            if self.wait_each_step:
                loss.asnumpy()  # host memory on CPU: a wait, not a transfer (see waits_each_step)
            self._pending.append((step, loss, finite))  # checked and logged at the next sync point
            self.step_in_epoch += 1
            window_steps += 1
            last_of_epoch = self.step_in_epoch == cfg.steps_per_epoch
            log_due = self.step_in_epoch % cfg.log_every == 0 or last_of_epoch
            local_stop = self.stop.signum is not None and self.ctx.group_size == 1
            if not (log_due or local_stop):
                continue
            stop = self._sync_pending()
            if self.ctx.is_main and log_due:
                elapsed = time.perf_counter() - window_start
                per_step = elapsed / max(1, window_steps)
                progress.clear()
                print(f"epoch: {self.epoch + 1} step: {self.step_in_epoch}, loss is {self.epoch_losses[-1]:.6f}, "
                      f"lr {lr:.3e}, per step time: {per_step * 1000:.1f} ms, "
                      f"{cfg.batch_size * self.ctx.group_size / per_step:.2f} sequences/s"
                      f"{self._scaler_text()}", flush=True)
                window_start, window_steps = time.perf_counter(), 0
            progress.update(self.step_in_epoch - first, f"loss {self.epoch_losses[-1]:.5f}")
            if stop:
                progress.clear()
                path = self.save(numbered=False, improved=False)
                if self.ctx.is_main:
                    print(f"stopped at epoch {self.epoch + 1} step {self.step_in_epoch}; saved {path}; "
                          f"continue with --resume auto", file=sys.stderr, flush=True)
                return False
        progress.clear()
        return True

    def _scaler_text(self):
        if self.loss_scaler is None:
            return ""
        return (f", loss scale {float(self.loss_scaler.scale_value.asnumpy()):g}, "
                f"{self.skipped_steps} overflow step(s) skipped so far")

    def _sync_pending(self):
        """Read back and check the pending losses and overflow flags in one all-reduce that every rank
        makes at the same steps, so all agree on divergence and stop (True: a rank asked to stop)."""
        if not self._pending:
            return self.stop.signum is not None
        steps = [step for step, _, _ in self._pending]
        losses = ops.stack([loss.astype(ms.float32).reshape(()) for _, loss, _ in self._pending])  # (n,)
        overflow = ops.stack([ops.logical_not(finite).astype(ms.float32).reshape(())
                              for _, _, finite in self._pending])  # (n,)
        stop_flag = ms.Tensor([1.0 if self.stop.signum is not None else 0.0], ms.float32)
        values = self._sum_over_ranks(ops.cat([losses, overflow, stop_flag])).asnumpy()  # (2n + 1,)
        n = len(steps)
        self._pending = []
        for step, loss, overflowed in zip(steps, values[:n] / self.ctx.group_size, values[n:2 * n] > 0):
            self._check_step(step, float(loss), bool(overflowed))
            self.epoch_losses.append(float(loss))
        return values[-1] > 0

    def _sum_over_ranks(self, tensor):
        return tensor if self.ctx.group_size == 1 else ops.AllReduce()(tensor)

    def _check_step(self, step, loss, overflowed):
        where = f"epoch {self.epoch + 1} step {step + 1}"
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss} at {where}; nothing was saved after it ({self.run.last} is the last good "
                "checkpoint); lower --lr or set --grad_clip")
        if overflowed:
            if not self.skips_overflows:
                raise TrainingDiverged(
                    f"a gradient became inf/NaN at {where} (the update was skipped); nothing was saved after it "
                    f"({self.run.last} is the last good checkpoint); lower --lr, set --grad_clip, or with mixed "
                    "precision use --loss_scale dynamic")
            self.skipped_steps += 1

    @functools.cached_property
    def selection(self):
        """The SelectionScore of best.ckpt, early stopping and the plateau schedule (src/training/selection.py)."""
        return selection_score(self.cfg, validates=self.val_source is not None)

    def _score_text(self):
        """"validation b-mse+b-mae", "validation mse", ... or "train loss" (no validation)."""
        label = self.selection.label
        return label if self.val_source is None else f"validation {label}"

    def _best_text(self):
        best = "n/a" if math.isinf(self.best_score) else f"{self.best_score:.4f}"
        return f"best {self._score_text()} {best} at epoch {self.best_epoch}"

    def _restore_best_score(self, meta, path):
        """The best score of the checkpoint; counted anew (with a note) when it was another score: a
        checkpoint from before best_metric existed chose on validation MSE (the train loss without validation)."""
        stored = meta.get("best_metric")
        self.best_score = math.inf if meta["best_score"] is None else float(meta["best_score"])
        if stored is None:
            stored = "mse" if self.val_source is not None else self.selection.label
            if self.ctx.is_main:
                print(f"note: {path} does not record which score chose best.ckpt (written before best_metric "
                      f"existed); its best score is taken as the {'validation ' if stored == 'mse' else ''}{stored}, "
                      "as it was then", flush=True)
        if stored == self.selection.label:
            return
        if self.ctx.is_main:
            print(f"note: {path} chose best.ckpt on {stored}, this run chooses on the {self._score_text()}: the best "
                  "score, early stopping and the plateau schedule count anew from the next epoch, whose checkpoint "
                  "replaces best.ckpt", flush=True)
        self.best_score, self.epochs_without_improvement = math.inf, 0
        self.schedule.load_state_dict(dict(self.schedule.state_dict(), best=None, bad_epochs=0))

    def _end_epoch(self):
        """Validate, log, checkpoint. True when training should stop early."""
        cfg = self.cfg
        epoch_time = time.perf_counter() - self._epoch_start
        val = self.validate() if self.val_source is not None else None
        train_loss = float(np.mean(self.epoch_losses)) if self.epoch_losses else float("nan")
        score = self.selection.value(val, train_loss)
        self.epoch += 1
        self.step_in_epoch = 0
        improved, self.best_score, self.best_epoch, self.epochs_without_improvement = next_best(
            self.selection, score, self.epoch, self.best_score, self.best_epoch, self.epochs_without_improvement)
        applied_lr = self.schedule.lr_at(self.epoch - 1, cfg.steps_per_epoch - 1)  # before a plateau decay
        self.schedule.on_validation(self.selection.as_loss(score))
        row = {"epoch": self.epoch, "train_loss": train_loss, "lr": applied_lr, "epoch_time_s": round(epoch_time, 3)}
        if self.loss_scaler is not None:
            row["skipped_steps"] = self.skipped_steps
        if val is not None:
            row.update({f"val_{k}": val[k] for k in ("mse", "mae", "ssim", "psnr")})
            row.update({f"val_{k}": v for k, v in val.items() if k in ("b_mse", "b_mae") or k.startswith("csi@")})
        row.update(score_name=self.selection.label, score=None if math.isnan(score) else score)
        self.history.append(row)
        numbered = self.epoch % cfg.save_every == 0 or self.epoch == cfg.epochs
        stop_early = cfg.early_stop_patience > 0 and self.epochs_without_improvement >= cfg.early_stop_patience
        if self.ctx.is_main:
            path = self.save(numbered=numbered or stop_early, improved=improved)
            self.run.write_history(self.history)
            remaining = (cfg.epochs - self.epoch) * epoch_time
            print(f"epoch: {self.epoch} done, train loss {train_loss:.6f}{self._validation_text(val, score)}, epoch "
                  f"time {format_duration(epoch_time)}{' (best)' if improved else ''}, saved "
                  f"{os.path.basename(path)}, ETA {format_duration(remaining)}", flush=True)
            if stop_early:
                print(f"early stopping: no improvement of the {self._score_text()} for {cfg.early_stop_patience} "
                      "epoch(s)", flush=True)
        return stop_early

    def _validation_text(self, val, score):
        """", val mse .. psnr .." and the selection score when it is none of those ("" without validation)."""
        if val is None:
            return ""
        text = f", val mse {val['mse']:.3f} mae {val['mae']:.3f} ssim {val['ssim']:.4f} psnr {val['psnr']:.2f}"
        if self.selection.name not in FRAME_SCORES:
            text += f", {self.selection.label} " + ("undefined" if math.isnan(score) else f"{score:.4f}")
        return text

    def validate(self):
        """Metrics of the current network on the fixed validation set, computed as eval.py does, and the
        selection score when the frame metrics lack it (B-MSE + B-MAE, CSI)."""
        if self._val_predictor is None:
            self._val_predictor = BatchPredictor.from_network(self.predict, self.cfg, self.cfg.eval_batch_size,
                                                              "(network being trained)")
        extra = ExtraScores(self.selection, self.cfg, self.val_source) if self.selection.needs_extra_scores else None
        self.net.set_train(False)
        try:
            result = evaluate(self.cfg, self._val_predictor, self.val_source, on_batch=extra, progress=False)
        finally:
            self.net.set_train(True)
        return result if extra is None else dict(result, **extra.result())


def train(cfg):
    """A run from a config: ``Trainer(cfg).fit()``."""
    return Trainer(cfg).fit()
