"""Command-line handling shared by the scripts around exported models (export.py, predict.py,
eval_onnx.py, preprocess.py, postprocess.py).

Each script has a few options of its own (``--mindir_file``, ``--check`` ...) next to config
keys (``--key value``); :func:`split_options` separates them. The config is then a stored
one (a checkpoint's or an exported model's) with the command-line keys applied on top.
"""
import difflib

from src.config import SCHEMA, config_from_dict, load_config, parse_overrides, resolve_config
from src.errors import ConfigError


def split_options(argv, own):
    """Separate script options (``own``: name -> default) from config ``--key value`` pairs.

    Returns (options dict, config overrides dict). Both accept ``--key value`` and ``--key=value``.
    """
    given = parse_overrides(list(argv))
    options = {name: given.pop(name, default) for name, default in own.items()}
    for name in given:  # a mistyped script option would otherwise be reported as an unknown config key
        close = [o for o in own if o.startswith(name)] or difflib.get_close_matches(name, list(own), n=1,
                                                                                     cutoff=0.75)
        if name not in SCHEMA and name != "config_path" and close:
            raise ConfigError(f"unknown option --{name} (did you mean --{close[0]}?)")
    return options, given


def parse_bool(value, name):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"option --{name}: expected true or false, got {value!r}")


def parse_float(value, name):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option --{name}: expected a number, got {value!r}") from None


def overrides_argv(overrides):
    """Config overrides back as ``--key=value`` arguments (for load_config)."""
    return [f"--{k}={v}" for k, v in overrides.items()]


def apply_overrides(base, overrides, where="the command line"):
    """``base`` config with command-line values applied (validated, unknown keys refused)."""
    overrides = {k: v for k, v in overrides.items() if k != "config_path"}
    values = dict(base.to_dict(), **overrides)
    return config_from_dict(values, where)


def _describe(input_shape, output_shape):
    return f"{input_shape[1]} -> {output_shape[1]} frames of {'x'.join(map(str, input_shape[2:]))}"


def check_model_signature(info, cfg):
    """ConfigError when the config asks for other frame counts or frame shapes than the model maps."""
    from src.export.model_info import model_input_shape, model_output_shape

    want = model_input_shape(cfg, info.batch_size), model_output_shape(cfg, info.batch_size)
    if want != (info.input_shape, info.output_shape):
        raise ConfigError(f"model {info.path} maps {_describe(info.input_shape, info.output_shape)} (C x H x W) but "
                          f"the config asks for {_describe(*want)}; drop the conflicting keys")


def config_for_model(info, overrides):
    """The config to run an exported model with: the one stored in the file (a MINDIR without
    one: the defaults with the graph's frame counts and size) resolved with the command line
    (``src.config.resolve_config``). It must match the model's signature."""
    base = info.config or load_config().replace(image_size=info.image_size)
    base = base.replace(input_frames=info.input_frames, output_frames=info.output_frames)
    cfg = resolve_config(overrides_argv(overrides), base, info.path)
    check_model_signature(info, cfg)
    return cfg


def init_inference_device(cfg):
    """src.device.init_device, with an unavailable backend reported as one line.

    A checkpoint or exported model stores the device it was trained on; running it on
    another machine needs --device_target for the local backend.
    """
    from src.device import init_device

    try:
        return init_device(cfg)
    except RuntimeError as err:
        if "device target" not in str(err).lower():
            raise
        raise ConfigError(f"device_target {cfg.device_target} is not available in this MindSpore installation "
                          "(the value may come from the checkpoint's config); pass --device_target CPU, GPU or "
                          "Ascend to match this machine") from None
