"""Config loading, overrides and rejections (src/config.py)."""
import os
import re
import subprocess
import sys

import pytest

from src.config import SCHEMA, config_from_dict, load_config, markdown_table
from src.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = ["ascend.yaml", "gpu.yaml", "cpu.yaml", "cpu_small.yaml"]


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_load_and_only_use_known_keys(name):
    cfg = load_config(config_path=os.path.join(REPO, "configs", name))
    assert cfg.input_frames == 10 and cfg.output_frames == 10
    assert name.upper().startswith(cfg.device_target.upper())


def test_full_recipe_configs_share_the_network():
    cfgs = [load_config(config_path=os.path.join(REPO, "configs", n)) for n in ("ascend.yaml", "gpu.yaml", "cpu.yaml")]
    keys = ("arch", "hidden_channels", "kernel_size", "patch_size", "epochs", "steps_per_epoch", "batch_size", "lr")
    assert len({tuple(str(getattr(c, k)) for k in keys) for c in cfgs}) == 1


def test_command_line_overrides_with_types():
    cfg = load_config(["--batch_size", "3", "--lr=0.5", "--hidden_channels", "8,4", "--peephole", "true",
                       "--arch", "zoo", "--debug"])
    assert cfg.batch_size == 3 and isinstance(cfg.batch_size, int)
    assert cfg.lr == 0.5 and cfg.hidden_channels == [8, 4]
    assert cfg.peephole is True and cfg.arch == "zoo" and cfg.debug is True


def test_yaml_scientific_notation_is_a_float(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nmin_lr: 1e-5\n")  # yaml 1.1 reads these as strings
    assert load_config(config_path=str(path)).lr == pytest.approx(1e-3)


def test_config_path_selects_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("batch_size: 7\n")
    assert load_config(["--config_path", str(path)]).batch_size == 7


@pytest.mark.parametrize("argv, fragment", [
    (["--batch_szie", "3"], "did you mean 'batch_size'"),
    (["--batch_size", "three"], "'batch_size'"),
    (["--batch_size", "0"], "'batch_size': must be >= 1"),
    (["--lr", "-1"], "'lr': must be > 0"),
    (["--arch", "unet"], "'arch'"),
    (["--input_frames", "15", "--dataset", "mnist"], "'input_frames'"),
    (["--hidden_channels", "8,x"], "'hidden_channels'"),
    (["--peephole", "maybe"], "'peephole'"),
    (["--lr", "nan"], "'lr'"),
    (["batch_size", "3"], "unexpected argument"),
    (["--seed", "1", "--seed", "2"], "given twice"),
    (["--arch", "zoo", "--forecaster_input", "prediction"], "only available for arch paper"),
    (["--forecaster_input", "frames"], "'forecaster_input'"),
    (["--image_size", "28"], "'image_size': must be >= 32"),
    (["--image_size", "34", "--arch", "paper", "--patch_size", "4"], "patch_size': 4 does not divide image_size 34"),
    (["--image_size", "34", "--arch", "zoo"], "'image_size' must be a multiple of 4 for arch zoo"),
])
def test_bad_values_name_the_key(argv, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(argv)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_image_size_is_limited_only_by_what_the_network_needs():
    """36 is not a multiple of 16 but both networks tile it (paper: 4x4 patches; zoo: two stride-2 stages)."""
    assert load_config(["--image_size", "36", "--arch", "paper", "--patch_size", "4"]).image_size == 36
    assert load_config(["--image_size", "36", "--arch", "zoo"]).image_size == 36


def test_unknown_key_in_yaml_names_file_and_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("batch_size: 2\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'learning_rate' in .*c\.yaml"):
        load_config(config_path=str(path))


def test_impossible_value_names_where_it_was_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.001\nmin_lr: 0.01\nbatch_size: 0\n")
    with pytest.raises(ConfigError, match=r"'batch_size': must be >= 1, got 0 \(set in .*c\.yaml\)"):
        load_config(config_path=str(path))
    with pytest.raises(ConfigError, match=r"'lr': must be > 0, got -1.0 \(set in the command line\)"):
        load_config(["--config_path", str(path), "--lr", "-1", "--batch_size", "2"])
    # a cross-key rule names both places
    with pytest.raises(ConfigError, match=r"'min_lr' .* \(set in .*c\.yaml and the command line\)"):
        load_config(["--config_path", str(path), "--lr", "0.005", "--batch_size", "2"])


def test_yaml_is_read_safely(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid yaml"):
        load_config(config_path=str(path))


def test_missing_config_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config(["--config_path", "/nonexistent/x.yaml"])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(["--hidden_channels", "8,8", "--lr", "0.01"])
    cfg.save(str(tmp_path / "config.yaml"))
    again = load_config(config_path=str(tmp_path / "config.yaml"))
    assert again.to_dict() == cfg.to_dict()
    assert config_from_dict(cfg.to_dict(), "x").to_dict() == cfg.to_dict()


def test_replace_validates():
    cfg = load_config(["--batch_size", "5"])
    assert cfg.replace(batch_size=2).batch_size == 2 and cfg.batch_size == 5
    with pytest.raises(ConfigError):
        cfg.replace(batch_size=-1)


def test_every_key_documented_in_table():
    table = markdown_table()
    for name, key in SCHEMA.items():
        assert f"`{name}`" in table and key.help


def test_cli_error_is_one_line_without_traceback():
    proc = subprocess.run([sys.executable, "train.py", "--batch_szie", "2"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: unknown config key 'batch_szie' in the command line (did you mean 'batch_size'?)"]


def test_markdown_table_has_five_cells_per_row():
    """A bare '|' in a help text would split its cell and break the README table."""
    for row in markdown_table().split("\n"):
        assert row.replace("\\|", "").count("|") == 6, row


# ---------------------------------------------------------------- roles: one rule per key

def test_every_key_has_exactly_one_known_role():
    from src.config import ROLES, Key, keys_with_role

    assert all(key.role in ROLES for key in SCHEMA.values())
    grouped = [name for role in ROLES for name in keys_with_role(role)]
    assert sorted(grouped) == sorted(SCHEMA)  # every key in one role's list, none in two
    for bad in ("", "nonsense"):  # a key declared without a role cannot exist
        with pytest.raises(ValueError, match="is not one of model, frame"):
            Key("best_guess", "int", 0, "x", "train", role=bad)


def _named_by(rule):
    """The keys whose role satisfies ``rule`` (a test on the Role), read key by key."""
    from src.config import ROLES

    return {name for name, key in SCHEMA.items() if rule(ROLES[key.role])}


def test_every_key_list_is_what_the_roles_say():
    from src.checkpoint import ARCHITECTURE_KEYS
    from src.config import ALWAYS, DERIVED_FROM_DATA, FRAME_KEYS, MODEL_KEYS, NEVER, RUN_ONLY_KEYS
    from src.training.resume import CHANGEABLE_ON_RESUME

    lists = {"MODEL_KEYS": (MODEL_KEYS, _named_by(lambda r: r.from_model == ALWAYS)),
             "RUN_ONLY_KEYS": (RUN_ONLY_KEYS, _named_by(lambda r: r.from_model == NEVER)),
             "FRAME_KEYS": (FRAME_KEYS, _named_by(lambda r: r.name == "frame")),
             "ARCHITECTURE_KEYS": (ARCHITECTURE_KEYS, _named_by(lambda r: r.name == "model")),
             "CHANGEABLE_ON_RESUME": (CHANGEABLE_ON_RESUME, _named_by(lambda r: r.may_change_on_resume))}
    for list_name, (derived, expected) in lists.items():
        assert len(derived) == len(set(derived)) and set(derived) == expected, list_name
    assert DERIVED_FROM_DATA == {name: key.default for name, key in SCHEMA.items() if key.from_data}


def test_the_roles_decisions():
    """The decisions behind the roles, pinned: what a checkpoint fixes and what a resume may change."""
    from src.checkpoint import ARCHITECTURE_KEYS
    from src.config import DERIVED_FROM_DATA, FRAME_KEYS, MODEL_KEYS, RUN_ONLY_KEYS
    from src.training.resume import CHANGEABLE_ON_RESUME

    assert DERIVED_FROM_DATA == {"channels": 0, "frame_height": 0, "frame_width": 0, "data_dtype": ""}
    assert set(DERIVED_FROM_DATA) <= set(MODEL_KEYS)  # filled in from the model (with_derived_keys)
    assert set(FRAME_KEYS) == {"image_size", "channels", "frame_height", "frame_width"}
    assert {"output_activation", "input_frames", "hidden_channels"} <= set(ARCHITECTURE_KEYS)
    assert {"data_scale", "data_min", "data_max"} <= set(MODEL_KEYS) - set(ARCHITECTURE_KEYS)
    # a run trained on Ascend in graph mode may continue on GPU or CPU, in pynative, on another cluster
    assert {"device_target", "device_id", "mode", "distribute"} <= set(RUN_ONLY_KEYS) & set(CHANGEABLE_ON_RESUME)
    assert {"epochs", "data_path", "log_every", "thresholds"} <= set(CHANGEABLE_ON_RESUME)
    procedure = {"seed", "batch_size", "lr", "loss", "loss_frames", "sampling", "sampling_stop",
                 "reverse_sampling_start", "onecycle_pct_start", "steps_per_epoch", "amp_level"}
    assert all(SCHEMA[name].role == "procedure" for name in procedure)
    assert not procedure & (set(CHANGEABLE_ON_RESUME) | set(MODEL_KEYS) | set(RUN_ONLY_KEYS))


def test_the_tables_show_every_keys_role():
    from src.config import ROLES, roles_table

    rows = {row.split(" | ")[0].strip("| `"): row for row in markdown_table().split("\n")[2:]}
    assert set(rows) == set(SCHEMA)
    for name, key in SCHEMA.items():
        assert rows[name].split(" | ")[3] == key.role, name
    listed = [cell.strip("` ") for row in roles_table().split("\n")[2:] for cell in row.split(" | ")[-1]
              .rstrip(" |").split(", ")]
    assert sorted(listed) == sorted(SCHEMA)
    assert [row.split(" | ")[0].strip("| ") for row in roles_table().split("\n")[2:]] == list(ROLES)


# ---------------------------------------------------------------- the one resolver (resolve_config)

def _trained(**changes):
    """A config as a checkpoint of a 2-rank run with a training override stores it."""
    from src.config import load_config

    values = dict(dataset="mnist", hidden_channels="[4,4]", distribute=True, device_target="Ascend", device_id=5, num_workers=8,
                  output_dir="/cache/train", thresholds="[0.5]", data_path="/cache/data")
    values.update(changes)
    return load_config([f"--{k}={v}" for k, v in values.items()])


def test_resolver_never_takes_run_only_keys_from_the_model():
    from src.config import RUN_ONLY_KEYS, SCHEMA, resolve_config

    cfg = resolve_config([], _trained(), "/x/model.mindir")
    for name in ("distribute", "device_target", "device_id", "num_workers", "output_dir"):
        assert getattr(cfg, name) == SCHEMA[name].default, name
    assert set(RUN_ONLY_KEYS) <= set(SCHEMA)
    assert cfg.hidden_channels == [4, 4] and cfg.thresholds == [0.5]  # the model's own values
    assert cfg.data_path == "/cache/data"  # the data it was trained on, unless the command line names other data


def test_resolver_output_dir_is_the_checkpoints_run_directory(tmp_path):
    from src.config import resolve_config

    ckpt = str(tmp_path / "run" / "ckpt" / "best.ckpt")
    assert resolve_config([], _trained(), ckpt).output_dir == str(tmp_path / "run")
    assert resolve_config(["--output_dir", "elsewhere"], _trained(), ckpt).output_dir == "elsewhere"


def test_resolver_takes_only_run_only_keys_from_a_yaml(tmp_path):
    from src.config import resolve_config

    path = tmp_path / "train.yaml"
    path.write_text("hidden_channels: [32, 32]\nnum_workers: 1\noutput_dir: /from/yaml\nthresholds: [0.2]\n")
    cfg = resolve_config(["--config_path", str(path)], _trained(), "m.ckpt")
    assert (cfg.hidden_channels, cfg.thresholds) == ([4, 4], [0.5])  # the model's
    assert (cfg.num_workers, cfg.output_dir) == (1, "/from/yaml")  # the yaml's run-only keys


def test_resolver_lets_the_command_line_replace_other_keys_and_refuses_model_keys():
    from src.config import resolve_config

    assert resolve_config(["--thresholds", "[0.3,0.6]"], _trained(), "m.ckpt").thresholds == [0.3, 0.6]
    assert resolve_config(["--hidden_channels", "[4,4]"], _trained(), "m.ckpt").hidden_channels == [4, 4]
    with pytest.raises(ConfigError, match=r"checkpoint m.ckpt was built for hidden_channels=\[4, 4\] .* hidden_channels=\[8\]"):
        resolve_config(["--hidden_channels", "[8]"], _trained(), "m.ckpt")


def test_resolver_without_a_model_is_load_config():
    from src.config import load_config, resolve_config

    argv = ["--batch_size", "3"]
    assert resolve_config(argv).to_dict() == load_config(argv).to_dict()


@pytest.mark.parametrize("script, own", [
    ("train.py", None), ("eval.py", None), ("eval_onnx.py", "--onnx_file"), ("export.py", "--check"),
    ("predict.py", "--mindir_file"), ("preprocess.py", "--mindir_file"), ("postprocess.py", "--result_path")])
def test_every_entry_point_answers_help(script, own):
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for flag in ("-h", "--help"):
        proc = subprocess.run([sys.executable, os.path.join(repo, script), flag], cwd=repo, capture_output=True,
                              text=True, timeout=120, check=False)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        assert proc.stdout.startswith(f"usage: {script}"), proc.stdout[:200]
        if own:
            assert own in proc.stdout
        if script != "postprocess.py":  # postprocess.py takes no config keys
            line = next(l for l in proc.stdout.splitlines() if l.strip().startswith("--batch_size INT"))
            assert "[int, default 8" in line, line  # cpu_small.yaml's value, the one in effect
            assert "--device_target" in proc.stdout and "Ascend," in proc.stdout  # allowed values listed


@pytest.mark.parametrize("argv, fragment", [
    (["--loss_thresholds", "[30,20]", "--loss_weights", "[1,2,3]"], "'loss_thresholds': must be increasing"),
    (["--loss_weights", "[1,2,3]"], "3 weights for 6 intensity classes"),
    (["--loss_thresholds", "[20,35]"], "2 thresholds need loss_weights (3 values)"),
    (["--loss_thresholds", "[20,35]", "--loss_weights", "[1,0,2]"], "weights must be > 0"),
])
def test_balance_keys_name_what_is_wrong(argv, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(argv)
    assert load_config(["--loss_thresholds", "[20,35]", "--loss_weights", "[1,2,5]"]).loss_weights == [1, 2, 5]


def test_the_frame_tiling_rule():
    from src.config import untileable

    assert untileable(36, 44, "zoo", 8) is None and untileable(40, 8, "paper", 8) is None
    assert untileable(0, 0, "paper", 4) is None  # not known yet
    assert "multiples of 4" in untileable(30, 32, "zoo", 1)
    assert "halves the frames twice" in untileable(32, 30, "zoo", 1)
    assert "cuts frames into 8x8 patches" in untileable(36, 64, "paper", 8)


def test_the_data_range_rule():
    from src.config import scaling_problem

    assert scaling_problem("auto", None, None) is None and scaling_problem("minmax", -10, 60) is None
    assert "only used with data_scale minmax" in scaling_problem("auto", 0, None)
    assert "needs data_min and data_max" in scaling_problem("minmax", -10, None)
    for low, high in ((5, 5), (6, 5), (0, float("inf"))):
        assert "must be finite and below data_max" in scaling_problem("minmax", low, high)


DBZ = ["--dataset", "sequences", "--data_scale", "minmax", "--data_min", "-10", "--data_max", "60"]


@pytest.mark.parametrize("argv, fragment", [
    (["--best_metric", "f1"], "'best_metric': 'f1' is not one of auto, mse, mae, ssim, psnr, bmse_bmae, "
                              "csi@THRESHOLD"),
    (["--best_metric", "csi"], "csi needs a threshold in the data's units after '@', e.g. csi@35"),
    (["--best_metric", "csi@"], "csi needs a threshold"),
    (["--best_metric", "csi@heavy"], "csi needs a threshold"),
    (["--best_metric", "csi@inf"], "must be a finite number"),
    (["--best_metric", "mse@3"], "is not one of"),
    (["--best_metric", "csi@35"], "csi@35 is outside (0, 1] (dataset synthetic: pixel values in [0, 1])"),
    (["--best_metric", "csi@0"], "csi@0 is outside (0, 1]"),
    (DBZ + ["--best_metric", "csi@70"], "csi@70 is outside (-10, 60] (data_min .. data_max)"),
    (["--dataset", "sequences", "--data_dtype", "uint8", "--best_metric", "csi@300"], "outside (0, 255] "
                                                                                      "(data_scale auto, uint8"),
    (["--best_metric", "bmse_bmae"], "bmse_bmae needs loss_thresholds"),
    (["--best_metric", "ssim", "--val_sequences", "0"], "ssim is a validation score but val_sequences is 0"),
])
def test_bad_best_metric_is_one_line_naming_the_key(argv, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(argv)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_best_metric_accepts_scores_the_data_gives_meaning():
    assert load_config([]).best_metric == "auto"
    assert load_config(["--best_metric", "csi@0.5"]).best_metric == "csi@0.5"
    assert load_config(DBZ + ["--best_metric", "csi@35"]).best_metric == "csi@35"
    assert load_config(DBZ + ["--best_metric", "bmse_bmae"]).best_metric == "bmse_bmae"  # HKO-7 classes for dBZ
    assert load_config(["--best_metric", "bmse_bmae", "--loss_thresholds", "[0.2,0.5]", "--loss_weights",
                        "[1,2,5]"]).loss_thresholds == [0.2, 0.5]
    # own data of a dtype not read yet: checked once train.py has read it (config_for_frames -> replace)
    cfg = load_config(["--dataset", "sequences", "--best_metric", "csi@300"])
    with pytest.raises(ConfigError, match=re.escape("csi@300 is outside (0, 255]")):
        cfg.replace(data_dtype="uint8")
    assert cfg.replace(data_dtype="uint16").data_dtype == "uint16"


@pytest.mark.parametrize("value, fragment", [
    ("[0,5]", "'fss_scales': must be distinct positive integers (empty: off), got [0, 5]"),
    ("[5,5]", "'fss_scales': must be distinct positive integers (empty: off), got [5, 5]"),
    ("[-3]", "must be distinct positive integers"),
    ("[1.5]", "config key 'fss_scales' in the command line: expected int_list, got '[1.5]'"),
    ("[a]", "expected int_list"),
])
def test_bad_fss_scales_are_one_line_naming_the_key(value, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(["--fss_scales", value])
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_fss_scales_default_and_off():
    assert load_config([]).fss_scales == SCHEMA["fss_scales"].default == [1, 5, 15]
    assert load_config(["--fss_scales", "[15,1]"]).fss_scales == [15, 1]  # the order is the metric's business
    assert load_config(["--fss_scales", "[]"]).fss_scales == []


@pytest.mark.parametrize("command", [
    ["-m", "src.config", "--get", "fss_scales", "--fss_scales", "[0,5]"],
    ["postprocess.py", "--thresholds", "[0.5]", "--fss_scales", "[3,3]"],
])
def test_bad_fss_scales_exit_with_one_error_line(command):
    proc = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: config key 'fss_scales'"), proc.stderr
    assert "must be distinct positive integers" in lines[0]


# ---------------------------------------------------------------- target_channels

THREE_CHANNELS = ["--dataset", "sequences", "--channels", "3", "--frame_height", "16", "--frame_width", "16"]


@pytest.mark.parametrize("argv, fragment", [
    (THREE_CHANNELS + ["--target_channels", "[0,0]"], "must be distinct channel indices >= 0 in increasing order"),
    (THREE_CHANNELS + ["--target_channels", "[2,0]"], "in increasing order"),
    (THREE_CHANNELS + ["--target_channels", "[-1]"], "channel indices >= 0"),
    (THREE_CHANNELS + ["--target_channels", "[3]"], "channel 3 does not exist, the frames have 3 channel(s), 0 to 2"),
    (["--target_channels", "[1]"], "channel 1 does not exist, the frames have 1 channel(s)"),  # Moving MNIST
    (THREE_CHANNELS + ["--target_channels", "[0]", "--arch", "stacked"], "arch stacked reads its own prediction"),
    (THREE_CHANNELS + ["--target_channels", "[0]", "--forecaster_input", "prediction"],
     "forecaster_input prediction feeds the forecaster its previous prediction"),
    (THREE_CHANNELS + ["--target_channels", "[0]", "--output_frames", "4", "--lead_frames", "8"],
     "lead_frames 8 rolls the model forward on its own predictions"),
    (THREE_CHANNELS + ["--target_channels", "[0]", "--output_activation", "linear", "--loss", "mse", "--residual",
                       "true", "--output_bias", "0"], "residual adds the predicted change to the last frame"),
])
def test_bad_target_channels_are_one_line_naming_the_key(argv, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(argv)
    assert fragment in str(err.value) and "'target_channels'" in str(err.value)
    assert "\n" not in str(err.value)


def test_target_channels_select_the_output_channels():
    from src.config import output_frame_shape, selects_channels, target_channel_indices

    every = load_config(THREE_CHANNELS)
    assert target_channel_indices(every) == (0, 1, 2) and output_frame_shape(every) == (3, 16, 16)
    radar = load_config(THREE_CHANNELS + ["--target_channels", "[0]"])
    assert target_channel_indices(radar) == (0,) and output_frame_shape(radar) == (1, 16, 16)
    assert selects_channels(radar) and not selects_channels(every)
    # naming every channel is no selection: the next-frame stack and a roll-out may read predictions back
    assert not selects_channels(load_config(THREE_CHANNELS + ["--target_channels", "[0,1,2]", "--arch", "stacked",
                                                              "--lead_frames", "20"]))
    assert SCHEMA["target_channels"].role == "model"  # a checkpoint of another target set is refused


def test_target_channels_are_checked_again_when_the_data_give_the_channel_count():
    """Before the data are read the channel count is 0 (unknown): the key is checked when it is filled in."""
    unknown = load_config(["--dataset", "sequences", "--target_channels", "[4]", "--arch", "stacked"])
    with pytest.raises(ConfigError, match="channel 4 does not exist, the frames have 3 channel"):
        unknown.replace(channels=3, frame_height=16, frame_width=16)
    with pytest.raises(ConfigError, match="arch stacked reads its own prediction"):
        unknown.replace(channels=6, frame_height=16, frame_width=16)
