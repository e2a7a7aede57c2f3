"""Resume continues the run that was started: the checkpoint's config is the base (``--config_path`` on top
only when given); the command line may change only ``CHANGEABLE_ON_RESUME`` (the keys of the roles that
allow it, ``src.config.ROLES``: e.g. epochs, the device and the mode) unless ``--allow_config_change true``,
which logs to ``config_changes.log``. The number of ranks and the
per-device batch_size must match even then (src.training.trainer: the sequences of a step depend on both)."""
import os
import time

from src.checkpoint import read_checkpoint_config
from src.config import DERIVED_FROM_DATA, keys_with_role, load_config, roles_where
from src.errors import ConfigError
from src.training.run_dir import RunDir

CHANGEABLE_ROLES = roles_where(may_change_on_resume=True)
CHANGEABLE_ON_RESUME = keys_with_role(*CHANGEABLE_ROLES)
CHANGES_LOG = "config_changes.log"


def resume_checkpoint(cfg):
    """The checkpoint ``cfg.resume`` points at, or "" for a new run (``auto`` without last.ckpt)."""
    if not cfg.resume:
        return ""
    if cfg.resume == "auto":
        last = RunDir(cfg.output_dir).last
        return last if os.path.isfile(last) else ""
    if not os.path.isfile(cfg.resume):
        raise ConfigError(f"config key 'resume': checkpoint {cfg.resume} not found (use a path or 'auto')")
    return cfg.resume


def config_differences(stored, requested):
    """[(key, stored value, requested value)] for the keys that may not change on resume. A key
    the request leaves to the data (channels = 0, ...) is not a change: training reads it again
    from the data, and the checkpoint's network must fit what it reads."""
    return [(name, value, getattr(requested, name)) for name, value in stored.to_dict().items()
            if name not in CHANGEABLE_ON_RESUME and getattr(requested, name) != value
            and DERIVED_FROM_DATA.get(name, object()) != getattr(requested, name)]


def _describe(changes):
    return ", ".join(f"{name} {old!r} -> {new!r}" for name, old, new in changes)


def training_config(argv):
    """train.py's config (see the module docstring)."""
    requested = load_config(argv)
    path = resume_checkpoint(requested)
    if not path:
        return requested
    stored = read_checkpoint_config(path)
    cfg = requested if "--config_path" in argv or any(a.startswith("--config_path=") for a in argv) \
        else load_config(argv, base=stored)
    changes = config_differences(stored, cfg)
    if not changes:
        return cfg
    if not cfg.allow_config_change:
        raise ConfigError(
            f"resume: {path} was trained with another config: {_describe(changes)}; on resume only keys of role "
            f"{', '.join(CHANGEABLE_ROLES)} may change ({', '.join(CHANGEABLE_ON_RESUME[:8])}, ...: "
            "`python -m src.config` lists the roles); drop the other overrides, or pass --allow_config_change true "
            "to continue with the new values, recorded in the run directory")
    message = f"resume with a changed config (--allow_config_change true): {_describe(changes)}"
    print(f"warning: {message}", flush=True)
    if os.environ.get("RANK_ID", "0") in ("", "0"):  # rank 0 writes the run directory
        run = RunDir(cfg.output_dir)
        os.makedirs(run.root, exist_ok=True)
        with open(os.path.join(run.root, CHANGES_LOG), "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} resuming {path}: {message}\n")
    return cfg
