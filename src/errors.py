"""User-facing errors and the command-line wrapper that reports them as one line.

Every problem a user can fix (a bad config key, a missing data file, a checkpoint of
another architecture) is raised as a ``UserError`` subclass. Entry points run their
``main`` through :func:`run_cli`, which prints ``error: <message>`` to stderr and exits
non-zero, without a traceback unless ``--debug`` is given.
"""
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
    """The first meaningful line of a (possibly multi-line, C++-annotated) exception message,
    for one-line error reports."""
    for line in str(err).splitlines():
        line = line.strip()
        if line and not set(line) <= set("-="):
            return line[:300]
    return type(err).__name__


def run_cli(main, argv=None):
    """Run ``main(argv)`` and turn user errors and Ctrl-C into clean exits."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or any(a in ("--debug=true", "--debug=True", "--debug=1") for a in argv)
    try:
        code = main(argv)
    except UserError as err:
        if debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(err.exit_code)
    except ModuleNotFoundError as err:
        if debug:
            traceback.print_exc()
        print(f"error: Python package '{err.name}' is not installed for {sys.executable}; install the "
              "requirements with `python3 -m pip install -r requirements.txt`", file=sys.stderr, flush=True)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    sys.exit(code or 0)
