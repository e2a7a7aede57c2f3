"""The command line of every entry point: ``--key value`` arguments, ``-h``/``--help`` and :func:`run_cli`,
which runs ``main`` and reports a ``UserError`` as ``error: <message>`` on stderr with a non-zero exit (a
traceback only under ``--debug``).

This module knows no config key: src.config imports the parsing from here, and an entry point hands
the config keys' part of its ``--help`` to :func:`run_cli` (``config_keys=src.config.keys_help``).
"""
import argparse
import difflib
import os
import sys
import traceback

from src.errors import ConfigError, UserError

TRUE_WORDS = ("true", "1", "yes", "on")  # the words a bool key or option accepts
FALSE_WORDS = ("false", "0", "no", "off")
BOOL_WORDS = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}
HELP_FLAGS = ("-h", "--help")
# other names, on the command line only, that ModelArts / OpenI jobs pass (see src/cloud.py)
CLI_ALIASES = {"data_url": "data_path", "train_url": "output_dir"}


# ---------------------------------------------------------------- --key value arguments

def argv_items(argv):
    """(name, value, tokens) of each ``--key value`` / ``--key=value`` / bare ``--flag`` (true) of ``argv``."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument {token!r}: arguments are --key value pairs")
        name, value, step = token[2:], "true", 1
        if "=" in name:
            name, value = name.split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            value, step = argv[i + 1], 2
        yield name.replace("-", "_"), value, argv[i:i + step]
        i += step


def parse_overrides(argv):
    """The ``--key value`` pairs of ``argv`` as a dict; ``--data_url`` / ``--train_url`` become
    data_path / output_dir (never both names of one key)."""
    overrides = {}
    for name, value, _ in argv_items(argv):
        if name in overrides:
            raise ConfigError(f"config key '{name}' given twice on the command line")
        overrides[name] = value
    if "enable_modelarts" in overrides:
        raise ConfigError("--enable_modelarts is not needed: a remote (obs://, s3://) data_url/train_url or "
                          "data_path/output_dir is copied with moxing on its own; remove the option")
    for alias, key in CLI_ALIASES.items():
        if alias in overrides:
            if key in overrides:
                raise ConfigError(f"--{alias} and --{key} both given on the command line: --{alias} is another "
                                  f"name for --{key}; give only one of them")
            overrides[key] = overrides.pop(alias)
    return overrides


def overrides_argv(overrides):
    """Config overrides back as ``--key=value`` arguments."""
    return [f"--{k}={v}" for k, v in overrides.items()]


def split_options(argv, own, config_keys):
    """(options, config overrides) of ``argv``: ``own`` maps the script's option names to defaults;
    ``config_keys`` (src.config.COMMAND_LINE_KEYS) are the names that are not a mistyped option."""
    given = parse_overrides(list(argv))
    options = {name: given.pop(name, default) for name, default in own.items()}
    for name in given:  # a mistyped script option would otherwise be reported as an unknown config key
        close = [o for o in own if o.startswith(name)] or difflib.get_close_matches(name, list(own), n=1,
                                                                                     cutoff=0.75)
        if name not in config_keys and close:
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


# ---------------------------------------------------------------- --help

def command_help(prog, doc, own_options=None, config_section=None):
    """The ``-h``/``--help`` text of an entry point: its docstring, its own options with their defaults
    and ``config_section`` (title, [(key, metavar, text)]) when the command takes config keys."""
    own_options = dict(own_options or {})
    usage = "%(prog)s" + (" [--option value ...]" if own_options else "") + \
        (" [--config_path FILE] [--key value ...]" if config_section else "")
    parser = argparse.ArgumentParser(prog=prog, usage=usage, description=(doc or "").strip(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    if own_options:
        group = parser.add_argument_group("options of this command")
        for name, default in own_options.items():
            group.add_argument(f"--{name}", metavar="VALUE", help=f"default: {default!r}".replace("%", "%%"))
    if config_section:
        title, rows = config_section
        group = parser.add_argument_group(title)
        for name, metavar, text in rows:
            group.add_argument(f"--{name}", metavar=metavar, help=text.replace("%", "%%"))
    return parser.format_help()


# ---------------------------------------------------------------- running main

def debug_requested(argv):
    """``--debug``, ``--debug true`` or ``--debug=true`` asks for tracebacks; ``--debug false`` does not."""
    for i, arg in enumerate(argv):
        if arg.startswith("--debug="):
            return arg.split("=", 1)[1].strip().lower() in TRUE_WORDS
        if arg == "--debug":
            following = argv[i + 1] if i + 1 < len(argv) else ""
            return following.startswith("--") or following == "" or following.strip().lower() in TRUE_WORDS
    return False


def run_cli(main, argv=None, doc=None, options=None, config_keys=None):
    """Run ``main(argv)``, turning user errors and Ctrl-C into clean exits. ``-h``/``--help`` prints
    :func:`command_help` of ``doc`` and ``options`` (name -> default); ``config_keys`` (src.config.keys_help:
    (argv, own option names) -> (title, rows)) adds the config keys with the defaults in effect."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if set(HELP_FLAGS) & set(argv):
        rest = [a for a in argv if a not in HELP_FLAGS]
        section = config_keys(rest, tuple(options or ())) if config_keys else None
        print(command_help(os.path.basename(sys.argv[0]) or "python", doc, options, section))
        sys.exit(0)
    debug = debug_requested(argv)
    try:
        code = main(argv)
    except (UserError, ModuleNotFoundError) as err:
        if debug:
            traceback.print_exc()
        if isinstance(err, ModuleNotFoundError):
            err = UserError(f"Python package '{err.name}' is not installed for {sys.executable}; install the "
                            "requirements with `python3 -m pip install -r requirements.txt`")
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    sys.exit(code or 0)
