"""Problems a user can fix are ``UserError``s: one line that says what, where and what to do.
``src.cli.run_cli`` reports one as ``error: <message>`` on stderr with the error's exit code."""


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
