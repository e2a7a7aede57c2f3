"""A resumed run continues with its checkpoint's config (src/training/resume.py)."""
import os
import subprocess
import sys

import pytest

from src.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "cpu_small.yaml")
TINY_VALUES = dict(config_path=CONFIG, hidden_channels="4", kernel_size="3", image_size="32", input_frames="3",
                   output_frames="2", batch_size="2", steps_per_epoch="2", val_sequences="2", num_workers="1",
                   mode="pynative", epochs="1", log_every="1")


def tiny(**changes):
    """The tiny run's ``--key value`` arguments with ``changes``."""
    return [token for key, value in dict(TINY_VALUES, **changes).items() for token in (f"--{key}", str(value))]


TINY = tiny()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished one-epoch run; returns its output_dir."""
    from src.training.resume import training_config
    from src.training.trainer import train

    run = str(tmp_path_factory.mktemp("resume") / "run")
    assert train(training_config(TINY + ["--output_dir", run])) == 0
    return run


def test_a_changed_learning_rate_is_refused_naming_both_values(trained):
    from src.training.resume import training_config

    with pytest.raises(ConfigError) as err:
        training_config(tiny(batch_size=4) + ["--output_dir", trained, "--resume", "auto", "--lr", "0.5"])
    message = str(err.value)
    assert "\n" not in message
    assert "lr 0.01 -> 0.5" in message and "batch_size 2 -> 4" in message and "--allow_config_change" in message


def test_more_epochs_continue_the_run(trained, tmp_path, capsys):
    import shutil

    from src.training.resume import training_config
    from src.training.trainer import Trainer

    run = str(tmp_path / "run")
    shutil.copytree(trained, run)
    cfg = training_config(tiny(epochs=2) + ["--output_dir", run, "--resume", "auto"])
    assert cfg.epochs == 2
    trainer = Trainer(cfg)
    assert trainer.epoch == 1 and trainer.fit() == 0 and trainer.epoch == 2
    out = capsys.readouterr().out
    assert "continuing at epoch 2 step 1" in out, out
    assert "config.yaml: updated for this run: " in out and "epochs 1 -> 2" in out, out


def test_without_config_path_the_checkpoint_config_is_the_base(trained):
    from src.training.resume import training_config

    cfg = training_config(["--output_dir", trained, "--resume", "auto", "--epochs", "3"])
    assert cfg.hidden_channels == [4] and cfg.image_size == 32 and cfg.epochs == 3  # not cpu_small's [32, 32], 64


def test_allow_config_change_continues_loudly_and_records_it(trained, tmp_path, capsys):
    import shutil

    from src.training.resume import CHANGES_LOG, training_config

    run = str(tmp_path / "run")
    shutil.copytree(trained, run)
    cfg = training_config(TINY + ["--output_dir", run, "--resume", "auto", "--lr", "0.5",
                                  "--allow_config_change", "true"])
    assert cfg.lr == 0.5
    assert "warning: resume with a changed config (--allow_config_change true): lr 0.01 -> 0.5" in capsys.readouterr().out
    with open(os.path.join(run, CHANGES_LOG), encoding="utf-8") as f:
        assert "lr 0.01 -> 0.5" in f.read()


def test_a_new_run_is_not_compared_with_anything(tmp_path):
    from src.training.resume import training_config

    cfg = training_config(TINY + ["--output_dir", str(tmp_path / "new"), "--resume", "auto", "--lr", "0.5"])
    assert cfg.lr == 0.5  # resume auto without last.ckpt starts a new run


def test_train_py_refuses_a_changed_lr_in_one_line_and_leaves_the_run_alone(trained):
    before = {name: os.path.getmtime(os.path.join(trained, "ckpt", name)) for name in os.listdir(
        os.path.join(trained, "ckpt"))}
    proc = subprocess.run([sys.executable, os.path.join(REPO, "train.py"), *TINY, "--output_dir", trained,
                           "--resume", "auto", "--lr", "0.02"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: resume:") and "lr 0.01 -> 0.02" in lines[0], proc.stderr
    after = {name: os.path.getmtime(os.path.join(trained, "ckpt", name)) for name in os.listdir(
        os.path.join(trained, "ckpt"))}
    assert after == before


@pytest.mark.parametrize("change", [dict(mode="graph"), dict(device_target="GPU"), dict(device_id="3"),
                                    dict(distribute="true")])
def test_the_device_and_the_mode_may_change_on_resume(trained, change):
    """A run trained on one device can continue on another after a machine failure (the number of
    ranks and the per-device batch are still checked by the trainer)."""
    from src.config import load_config
    from src.training.resume import training_config

    cfg = training_config(tiny(**change) + ["--output_dir", trained, "--resume", "auto"])
    expected = load_config(tiny(**change))
    assert all(getattr(cfg, key) == getattr(expected, key) for key in change)


@pytest.mark.parametrize("key, value", [("seed", "2"), ("optimizer", "sgd"), ("steps_per_epoch", "3"),
                                        ("loss", "mse"), ("val_sequences", "3"), ("grad_clip", "0.5")])
def test_a_procedure_key_is_still_refused_without_allow_config_change(trained, key, value):
    from src.config import SCHEMA
    from src.training.resume import training_config

    assert SCHEMA[key].role == "procedure"
    argv = tiny(**{key: value}) + ["--output_dir", trained, "--resume", "auto"]
    with pytest.raises(ConfigError) as err:
        training_config(argv)
    message = str(err.value)
    assert "\n" not in message and f"{key} " in message and "--allow_config_change" in message, message


def test_a_run_trained_in_graph_mode_continues_in_pynative(tmp_path, capsys):
    from src.training.resume import training_config
    from src.training.trainer import Trainer, train

    run = str(tmp_path / "run")
    assert train(training_config(tiny(mode="graph") + ["--output_dir", run])) == 0
    cfg = training_config(tiny(mode="pynative", epochs=2) + ["--output_dir", run, "--resume", "auto"])
    trainer = Trainer(cfg)
    assert cfg.mode == "pynative" and trainer.epoch == 1 and trainer.fit() == 0 and trainer.epoch == 2
    out = capsys.readouterr().out
    assert "continuing at epoch 2 step 1" in out and "mode 'graph' -> 'pynative'" in out, out
    assert [row["epoch"] for row in trainer.history] == [1, 2]
