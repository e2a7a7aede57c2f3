"""Problems a user can fix are ``UserError``s; entry points run ``main`` through :func:`run_cli`, which
reports one as ``error: <message>`` on stderr and a non-zero exit, with a traceback only under ``--debug``."""
import os
import sys
import traceback


class UserError(Exception):
    """An error the user can fix; its message says what, where and what to do."""

    exit_code = 2


class ConfigError(UserError):
    """Unknown key, wrong type or impossible value in the configuration."""


class DataError(UserError):
    """A data file is missing, truncated or not in the expected format."""


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt, or was built for another network."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""

    exit_code = 3


def first_line(err):
    """The first meaningful line of a (possibly multi-line, C++-annotated) exception message."""
    for line in str(err).splitlines():
        line = line.strip()
        if line and not set(line) <= set("-="):
            return line[:300]
    return type(err).__name__


TRUE_WORDS = ("true", "1", "yes", "on")  # the words a bool key or option accepts
FALSE_WORDS = ("false", "0", "no", "off")
BOOL_WORDS = {**dict.fromkeys(TRUE_WORDS, True), **dict.fromkeys(FALSE_WORDS, False)}
HELP_FLAGS = ("-h", "--help")


def debug_requested(argv):
    """``--debug``, ``--debug true`` or ``--debug=true`` asks for tracebacks; ``--debug false`` does not."""
    for i, arg in enumerate(argv):
        if arg.startswith("--debug="):
            return arg.split("=", 1)[1].strip().lower() in TRUE_WORDS
        if arg == "--debug":
            following = argv[i + 1] if i + 1 < len(argv) else ""
            return following.startswith("--") or following == "" or following.strip().lower() in TRUE_WORDS
    return False


def run_cli(main, argv=None, doc=None, options=None, config_keys=True):
    """Run ``main(argv)``, turning user errors and Ctrl-C into clean exits; ``-h``/``--help`` prints
    ``src.config.command_help`` (``doc``, ``options`` name -> default, with ``config_keys`` the keys)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if set(HELP_FLAGS) & set(argv):
        from src.config import command_help

        print(command_help(os.path.basename(sys.argv[0]) or "python", doc, options, argv, config_keys))
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
