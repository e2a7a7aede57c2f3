"""The command line (src/cli.py): --key value parsing, own options, --help and run_cli's exits."""
import pytest

from src.cli import debug_requested, parse_bool, parse_float, parse_overrides, run_cli, split_options
from src.errors import ConfigError, DataError


def test_parse_overrides_forms():
    assert parse_overrides(["--a", "1", "--b=2", "--flag"]) == {"a": "1", "b": "2", "flag": "true"}
    assert parse_overrides(["--data-url", "obs://b/d", "--train_url=obs://b/r"]) == \
        {"data_path": "obs://b/d", "output_dir": "obs://b/r"}


@pytest.mark.parametrize("argv, fragment", [
    (["--a", "1", "--a", "2"], "'a' given twice"),
    (["loose"], "unexpected argument 'loose'"),
    (["--data_url", "x", "--data_path", "y"], "--data_url and --data_path both given"),
    (["--enable_modelarts", "true"], "--enable_modelarts is not needed"),
])
def test_parse_overrides_refuses(argv, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_overrides(argv)


@pytest.mark.parametrize("argv, expected", [
    (["--debug"], True), (["--debug", "true"], True), (["--debug=1"], True), (["--debug", "--lr", "1"], True),
    (["--debug", "false"], False), (["--debug=false"], False), (["--debug", "0"], False), ([], False)])
def test_debug_means_what_it_says(argv, expected):
    assert debug_requested(argv) is expected


def test_split_options_separates_own_options_from_config_keys():
    own = {"mindir_file": "", "tolerance": "1e-5"}
    options, rest = split_options(["--mindir_file", "m.mindir", "--lr", "0.1"], own, config_keys={"lr"})
    assert options == {"mindir_file": "m.mindir", "tolerance": "1e-5"} and rest == {"lr": "0.1"}
    with pytest.raises(ConfigError, match=r"unknown option --mindir \(did you mean --mindir_file\?\)"):
        split_options(["--mindir", "m.mindir"], own, config_keys={"lr"})
    # a config key that happens to look like an own option is no typo
    assert split_options(["--tolerant", "1"], own, config_keys={"tolerant"})[1] == {"tolerant": "1"}


def test_option_values():
    assert parse_bool("Yes", "check") is True and parse_bool("off", "check") is False
    assert parse_float("1e-3", "tolerance") == 1e-3
    with pytest.raises(ConfigError, match="option --check: expected true or false"):
        parse_bool("maybe", "check")
    with pytest.raises(ConfigError, match="option --tolerance: expected a number"):
        parse_float("small", "tolerance")


def _exit(main, argv, **kwargs):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv, **kwargs)
    return exit_info.value.code


def test_run_cli_turns_a_user_error_into_one_line(capsys):
    def fails(argv):
        raise DataError("file x.npy is truncated; fetch it again")

    assert _exit(fails, []) == 2
    assert capsys.readouterr().err == "error: file x.npy is truncated; fetch it again\n"
    assert _exit(fails, ["--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err  # --debug keeps the traceback
    assert _exit(lambda argv: 0, []) == 0


def test_help_lists_own_options_and_the_config_section_given(capsys):
    seen = []

    def section(argv, own):
        seen.append((argv, own))
        return "config keys (test)", [("lr", "FLOAT", "learning rate [float, default 0.5]")]

    assert _exit(lambda argv: 1 / 0, ["--lr", "2", "--help"], doc="Does a thing.", options={"check": "false"},
                 config_keys=section) == 0
    text = capsys.readouterr().out
    assert "Does a thing." in text and "--check VALUE" in text and "default: 'false'" in text
    assert "config keys (test)" in text and "--lr FLOAT" in text and "default 0.5" in text
    assert seen == [(["--lr", "2"], ("check",))]  # the command line without the help flag
    assert _exit(lambda argv: 1 / 0, ["-h"], options={"check": "false"}) == 0
    assert "config keys" not in capsys.readouterr().out  # no section: a command without config keys
