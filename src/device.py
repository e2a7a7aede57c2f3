"""Device context, distributed initialisation and rank information."""
# MindSpore is imported inside functions: this module is imported on paths that never load it (--help, config
# errors, ONNX Runtime evaluation).
import contextlib
import logging
import os
import sys
from dataclasses import dataclass

from src.errors import ConfigError


@dataclass(frozen=True)
class RunContext:
    """Where this process runs: its rank in the data-parallel group and the group size."""

    device_target: str
    rank: int = 0
    group_size: int = 1

    @property
    def is_main(self):
        """Only rank 0 writes checkpoints, logs and pictures."""
        return self.rank == 0


@contextlib.contextmanager
def quiet_mindspore_log(level=logging.ERROR):
    """Drop MindSpore's log records below ``level`` in the block: notices this project handles itself
    (nn.Adam's FusedSparseAdam deprecation; a failed checkpoint write, reported as one ``error:`` line)."""
    import mindspore as ms

    get_logger = getattr(getattr(ms, "log", None), "_get_logger", None)
    logger = get_logger() if get_logger is not None else None
    if logger is None:
        yield
        return
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _launched_by_cluster():
    """True when msrun / a dynamic-cluster launcher, a rank table or mpirun started this process."""
    return any(os.environ.get(name) for name in ("MS_ROLE", "MS_WORKER_NUM", "RANK_TABLE_FILE", "OMPI_COMM_WORLD_SIZE"))


def _launcher_device_id():
    """DEVICE_ID as set by a rank table or mpirun (else MindSpore puts every process on device 0);
    None under msrun, which negotiates device ids itself."""
    device = os.environ.get("DEVICE_ID", "")
    return int(device) if device.isdigit() and not os.environ.get("MS_ROLE") else None


def init_device(cfg):
    """Set the MindSpore context and join the cluster when distributed. The context stays PYNATIVE:
    graph mode is ``mindspore.jit`` per function, so data handling and logging stay plain Python."""
    import mindspore as ms

    ms.set_context(mode=ms.PYNATIVE_MODE)
    if cfg.distribute:
        if not _launched_by_cluster():
            raise ConfigError("config key 'distribute' is true but this process was not started by a cluster "
                              "launcher; use scripts/run_distribute_train*.sh (msrun) or set --distribute false")
        from mindspore.communication import get_group_size, get_rank, init

        ms.set_device(cfg.device_target, _launcher_device_id())
        init()
        rank, group_size = get_rank(), get_group_size()
        ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                     device_num=group_size)
        return RunContext(cfg.device_target, rank, group_size)
    _set_device(cfg.device_target, cfg.device_id if cfg.device_target != "CPU" else None)
    return RunContext(cfg.device_target)


def init_inference_device(cfg):
    """:func:`init_device` for a command running a trained model: an unavailable backend (perhaps the
    model's stored device_target) is one line naming the fix."""
    try:
        return init_device(cfg)
    except RuntimeError as err:
        if "device target" not in str(err).lower():
            raise
        raise ConfigError(f"device_target {cfg.device_target} is not available in this MindSpore installation "
                          "(the value may come from the checkpoint's config); pass --device_target CPU, GPU or "
                          "Ascend to match this machine") from None


def _set_device(target, device_id):
    """Select the device; a second call, refused after kernels ran, is harmless for the same device."""
    import mindspore as ms

    try:
        ms.set_device(target, device_id)
    except RuntimeError as err:
        if "Unsupported device target" in str(err):
            raise ConfigError(f"config key 'device_target': {target} is not available in this MindSpore "
                              "installation (no such device or backend); install the matching mindspore "
                              "wheel, or pass --device_target CPU") from None
        current = ms.get_context("device_target")
        if current != target:
            raise ConfigError(f"config key 'device_target': this process already runs on {current}; "
                              f"start a new process for {target}") from None


def effective_amp_level(cfg):
    """The mixed-precision level a run uses: on CPU only with ``amp_on_cpu`` (slow float16 kernels);
    otherwise the CPU trains float32 and says so."""
    if cfg.amp_level != "O0" and cfg.device_target == "CPU" and not cfg.amp_on_cpu:
        print(f"warning: amp_level {cfg.amp_level} is for Ascend/GPU; the CPU backend runs float32 (amp_level O0); "
              "pass --amp_on_cpu true to run the mixed-precision path on CPU", file=sys.stderr, flush=True)
        return "O0"
    return cfg.amp_level


def effective_loss_scale(cfg):
    """none where the CPU ignores mixed precision, else the configured one (also at amp_level O0)."""
    return "none" if cfg.device_target == "CPU" and not cfg.amp_on_cpu else cfg.loss_scale
