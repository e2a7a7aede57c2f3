"""Device context, distributed initialisation and rank information."""
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


def warn(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def quiet_mindspore_log(level=logging.ERROR):
    """Drop MindSpore's own Python log records below ``level`` for the duration of the block.

    Used where MindSpore logs to stderr about things this project handles itself (nn.Adam's
    internal FusedSparseAdam deprecation notice; the CRITICAL line of a failed checkpoint
    write that is reported as one ``error: ...`` line instead)."""
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
    return bool(os.environ.get("MS_ROLE") or os.environ.get("MS_WORKER_NUM") or os.environ.get("RANK_TABLE_FILE")
                or os.environ.get("OMPI_COMM_WORLD_SIZE"))


def _launcher_device_id():
    """The device of this process when the launcher assigns it in DEVICE_ID (rank table on Ascend;
    mpirun, whose local rank MindSpore copies to DEVICE_ID). None under msrun, which negotiates
    device ids itself; MindSpore would otherwise put every such process on device 0."""
    if os.environ.get("MS_ROLE") or not os.environ.get("DEVICE_ID", "").isdigit():
        return None
    return int(os.environ["DEVICE_ID"])


def init_device(cfg):
    """Set the MindSpore context from the config and join the cluster when distributed.

    Graph compilation is applied per function with ``mindspore.jit`` (cfg.mode == "graph"),
    so the global context stays in PYNATIVE mode; this keeps data handling and logging in
    plain Python and lets the same code run eagerly for debugging (cfg.mode == "pynative").
    """
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


def _set_device(target, device_id):
    """Select the device once per process; MindSpore refuses a second call after kernels ran,
    which is harmless when the device is the same (several runs in one process, e.g. tests)."""
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
    """The mixed-precision level a run really uses: the configured one on Ascend/GPU, and on CPU
    only with ``amp_on_cpu`` (float16 kernels exist on the CPU backend, slowly; without it the
    CPU trains float32 and says so once)."""
    if cfg.amp_level != "O0" and cfg.device_target == "CPU" and not cfg.amp_on_cpu:
        warn(f"amp_level {cfg.amp_level} is for Ascend/GPU; the CPU backend runs float32 (amp_level O0); "
             "pass --amp_on_cpu true to run the mixed-precision path on CPU")
        return "O0"
    return cfg.amp_level


def effective_loss_scale(cfg):
    """The loss scaling a run really uses: none where the CPU ignores mixed precision (see
    ``effective_amp_level``), else the configured one (it also applies at amp_level O0)."""
    if cfg.device_target == "CPU" and not cfg.amp_on_cpu:
        return "none"
    return cfg.loss_scale
