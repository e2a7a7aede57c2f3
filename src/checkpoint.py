"""Checkpoints: atomic save, verified load, architecture checks. One ``.ckpt`` holds weights, optimizer
state, ``config_yaml`` and ``meta_json`` (position, best score, schedule, loss scale): with data a function
of (seed, epoch, step), all a bit-identical continuation needs."""
# MindSpore and src.models are imported inside functions: eval_onnx.py, --help and config errors import this
# module without loading MindSpore, which loads with the first checkpoint read or written.
import json
import logging
import os
import shutil

import yaml

from src.cli import parse_overrides
from src.config import config_from_dict, frame_shape, keys_with_role, resolve_config, with_derived_keys
from src.device import quiet_mindspore_log
from src.errors import CheckpointError
from src.io import atomic_path

FORMAT_VERSION = 1
# keys that change the network's parameter shapes or its input/output contract; the frame shape
# (role frame) is compared as one C x H x W
ARCHITECTURE_KEYS = keys_with_role("model")


class CheckpointWriteError(CheckpointError, OSError):
    """Writing a checkpoint failed (disk full, no permission); the previous file is untouched."""


def _write_failed(path, err):
    reason = err.strerror or str(err) or type(err).__name__
    return CheckpointWriteError(f"could not write checkpoint {path} ({reason}); the previous checkpoints and logs "
                                "are unchanged; free disk space (or fix permissions) and continue with --resume auto")


def optimizer_state_params(optimizer):
    """The optimizer's own parameters (moments etc.), excluding the network weights it updates."""
    network_ids = {id(p) for p in optimizer.parameters}
    return list({id(p): p for _, p in optimizer.parameters_and_names() if id(p) not in network_ids}.values())


def save_checkpoint(path, net, cfg, meta, optimizer=None):
    """Write a checkpoint atomically (temporary file, then rename): a failure leaves ``path`` as it was."""
    import mindspore as ms

    params = [{"name": p.name, "data": p} for p in net.get_parameters()]
    if optimizer is not None:
        params += [{"name": p.name, "data": p} for p in optimizer_state_params(optimizer)]
    extra = {"config_yaml": cfg.to_yaml(), "meta_json": json.dumps(dict(meta, format_version=FORMAT_VERSION))}
    if not path.endswith(".ckpt"):
        raise ValueError(f"checkpoint path {path} must end with .ckpt (MindSpore appends it otherwise)")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            partial = os.path.splitext(tmp)[0] + ".tmp"  # mindspore writes here, then renames to tmp
            try:
                with quiet_mindspore_log(logging.CRITICAL + 1):  # the failure is reported below, in one line
                    ms.save_checkpoint(params, tmp, append_dict=extra)
            finally:
                if os.path.exists(partial):
                    os.remove(partial)
    except OSError as err:
        raise _write_failed(path, err) from err
    return path


def publish_copy(src, dst):
    """Make ``dst`` (e.g. last.ckpt) an atomic copy of ``src``."""
    try:
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
    except OSError as err:
        raise _write_failed(dst, err) from err
    return dst


def read_checkpoint(path):
    """Load a checkpoint file into a dict of parameters and metadata, or explain why not."""
    import mindspore as ms

    if not path:
        raise CheckpointError("no checkpoint given: pass --ckpt_file PATH (e.g. OUTPUT_DIR/ckpt/best.ckpt)")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path} is a directory; pass a .ckpt file such as {path}/ckpt/best.ckpt")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        data = ms.load_checkpoint(path)
    except Exception as err:  # mindspore raises ValueError/RuntimeError on damaged files
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt or not a MindSpore checkpoint ({reason[:160]})") from None
    if "config_yaml" not in data or "meta_json" not in data:
        raise CheckpointError(f"checkpoint {path} was not written by this project's train.py (no stored config); "
                              "pass --config_path and use a checkpoint from OUTPUT_DIR/ckpt/")
    return data


def checkpoint_config(data, path):
    """The config stored in a loaded checkpoint."""
    try:
        return config_from_dict(yaml.safe_load(str(data["config_yaml"])), f"checkpoint {path}")
    except yaml.YAMLError:
        raise CheckpointError(f"checkpoint {path} holds an unreadable config") from None


def checkpoint_meta(data):
    return json.loads(str(data["meta_json"]))


def read_data_record(path):
    """The data record train.py stored in a checkpoint's metadata (own sequences: frame shape, normalisation,
    split of record with fingerprints; src.data.pipeline.TrainingData.record), or None."""
    return checkpoint_meta(read_checkpoint(path)).get("data")


def checkpoint_record(path):
    """One line on where the checkpoint ``path`` stands in its training run: when it was saved and the best
    score of the run so far (the score that chose best.ckpt, ``best_metric``); "" when it records none."""
    import mindspore as ms

    try:  # only the metadata entry: no weights are read
        meta = checkpoint_meta(ms.load_checkpoint(path, choice_func=lambda name: name == "meta_json"))
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the loader of its weights
        return ""
    done, step, score = meta.get("epoch"), meta.get("step_in_epoch", 0), meta.get("best_score")
    if done is None or score is None:
        return ""
    saved = f"saved after epoch {done}" if not step else f"saved in epoch {done + 1} at step {step}"
    label = meta.get("best_metric") or "score"  # written before best_metric existed: the validation MSE
    what = label if label == "train loss" else f"validation {label}"
    if meta.get("best_epoch") == done and not step:
        return f"checkpoint {saved}: the run's best {what} so far, {score:.4f}"
    return (f"checkpoint {saved}; the run's best {what} so far: {score:.4f} at epoch {meta.get('best_epoch')} "
            "(best.ckpt)")


def read_checkpoint_config(path):
    return checkpoint_config(read_checkpoint(path), path)


def check_same_architecture(stored, cfg, path, any_frame=False):
    """Refuse a checkpoint whose network differs from the one ``cfg`` builds. ``any_frame``: ``cfg``'s frames may
    have another height and width (an export's deployment frame, src.config.deployment_config): the networks
    are convolutional, unless peephole weights (per pixel) tie them to the checkpoint's."""
    trained_on, asked = frame_shape(stored), frame_shape(cfg)
    if any_frame and trained_on[0] == asked[0] and not stored.peephole:
        trained_on = asked  # the tiling rule is the config's (src.config.untileable)
    if trained_on != asked:
        raise CheckpointError(
            f"checkpoint {path} was trained on frames of {'x'.join(map(str, trained_on))} (C x H x W) but the data "
            f"and config here have {'x'.join(map(str, asked))}; use data of the checkpoint's shape (or train a "
            "model on this data)")
    for key in ARCHITECTURE_KEYS:
        if getattr(stored, key) != getattr(cfg, key):
            raise CheckpointError(
                f"checkpoint {path} was built for {key}={getattr(stored, key)} but the config asks for "
                f"{key}={getattr(cfg, key)}; use the matching --config_path or omit --{key}")


def load_weights(net, data, path):
    """Copy the checkpoint's weights into ``net``; every network parameter must be present."""
    import mindspore as ms

    params = {k: v for k, v in data.items() if isinstance(v, ms.Parameter)}
    missing, _ = ms.load_param_into_net(net, params, strict_load=True)
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {len(missing)} network weights (first: {missing[0]}); "
                              "it was made by another network")


def load_network_from_checkpoint(path, cfg=None, any_frame=False):
    """(the checkpoint's network with its weights, ``cfg`` (which it must match; ``any_frame``: but for the frame's
    height and width, see check_same_architecture) or the stored config)."""
    from src.models.network import build_network

    data = read_checkpoint(path)
    stored = checkpoint_config(data, path)
    if cfg is None:
        cfg = stored
    else:
        cfg = with_derived_keys(cfg, stored)  # frame shape/dtype left to the data
        check_same_architecture(stored, cfg, path, any_frame)
    net = build_network(stored)
    load_weights(net, data, path)
    net.set_train(False)
    return net, cfg


def restore_training_state(path, net, optimizer, cfg):
    """Load weights and optimizer state for resuming; returns the stored training metadata."""
    import mindspore as ms

    data = read_checkpoint(path)
    check_same_architecture(checkpoint_config(data, path), cfg, path)
    state_names = [p.name for p in optimizer_state_params(optimizer)]
    absent = [n for n in state_names if n not in data]
    if absent:
        raise CheckpointError(f"checkpoint {path} has no optimizer state ({absent[0]} missing, e.g. it was made "
                              f"with another optimizer than '{cfg.optimizer}'); it cannot be resumed")
    load_weights(net, data, path)
    # the optimizer cell also holds the network weights: pass them too, or MindSpore warns on stderr
    names = state_names + [p.name for p in optimizer.parameters]
    ms.load_param_into_net(optimizer, {n: data[n] for n in names if n in data}, strict_load=True)
    return checkpoint_meta(data)


def config_of_record(argv):
    """The config of a command on a checkpoint (eval.py): with ``--ckpt_file`` the stored one resolved with
    the command line (``src.config.resolve_config``), else the command line's."""
    ckpt = parse_overrides(list(argv)).get("ckpt_file")
    return resolve_config(argv, read_checkpoint_config(ckpt), ckpt) if ckpt else resolve_config(argv)
