"""Command lines of the scripts around exported models: own options next to config ``--key value`` pairs,
and an exported model's config resolved with the command line."""
import difflib

from src.config import SCHEMA, load_config, overrides_argv, parse_overrides, resolve_config
from src.errors import BOOL_WORDS, ConfigError


def split_options(argv, own):
    """(options, config overrides) of ``argv``: ``own`` maps the script's option names to defaults."""
    given = parse_overrides(list(argv))
    options = {name: given.pop(name, default) for name, default in own.items()}
    for name in given:  # a mistyped script option would otherwise be reported as an unknown config key
        close = [o for o in own if o.startswith(name)] or difflib.get_close_matches(name, list(own), n=1,
                                                                                     cutoff=0.75)
        if name not in SCHEMA and name != "config_path" and close:
            raise ConfigError(f"unknown option --{name} (did you mean --{close[0]}?)")
    return options, given


def parse_bool(value, name):
    word = value if isinstance(value, bool) else BOOL_WORDS.get(str(value).strip().lower())
    if word is None:
        raise ConfigError(f"option --{name}: expected true or false, got {value!r}")
    return word


def parse_float(value, name):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"option --{name}: expected a number, got {value!r}") from None


def _describe(input_shape, output_shape):
    return f"{input_shape[1]} -> {output_shape[1]} frames of {'x'.join(map(str, input_shape[2:]))}"


def config_for_model(info, overrides):
    """The config stored in an exported model (else the defaults with the graph's frame counts and size)
    resolved with the command line; it must match the model's signature."""
    from src.export.model_info import model_input_shape, model_output_shape

    base = info.config or load_config().replace(image_size=info.image_size)
    base = base.replace(input_frames=info.input_frames, output_frames=info.output_frames)
    cfg = resolve_config(overrides_argv(overrides), base, info.path)
    want = model_input_shape(cfg, info.batch_size), model_output_shape(cfg, info.batch_size)
    if want != (info.input_shape, info.output_shape):
        raise ConfigError(f"model {info.path} maps {_describe(info.input_shape, info.output_shape)} (C x H x W) but "
                          f"the config asks for {_describe(*want)}; drop the conflicting keys")
    return cfg


def init_inference_device(cfg):
    """src.device.init_device; an unavailable backend (the model's stored device_target) is one line."""
    from src.device import init_device

    try:
        return init_device(cfg)
    except RuntimeError as err:
        if "device target" not in str(err).lower():
            raise
        raise ConfigError(f"device_target {cfg.device_target} is not available in this MindSpore installation "
                          "(the value may come from the checkpoint's config); pass --device_target CPU, GPU or "
                          "Ascend to match this machine") from None
