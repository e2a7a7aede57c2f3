"""ModelArts / OpenI jobs (src/cloud.py and the aliases in src/config.py): --data_url / --train_url,
remote folders copied in and out through moxing.

moxing itself (Huawei's OBS client) is not installed here: a stand-in module that maps
``obs://bucket/...`` to a local folder and records every call is put into ``sys.modules``.
The real moxing is therefore never run by these tests.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import types
import zipfile

import numpy as np
import pytest

from src import cloud
from src.cloud import local_copies
from src.config import load_config
from src.data.archive import CACHE_DIR, is_remote_url
from tests.data_files import write_idx_images
from src.data.pipeline import MNIST_TRAIN_FILES, MNIST_VAL_COUNT, load_digits
from src.errors import ConfigError, UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_FILE = MNIST_TRAIN_FILES[0]


class FakeMoxing:
    """Stand-in for ``moxing``: ``obs://X`` is ``<root>/X``; calls are recorded as tuples."""

    def __init__(self, root):
        self.root = str(root)
        self.calls = []
        self.refuse_uploads = False
        self.file = types.SimpleNamespace(exists=self.exists, is_directory=self.is_directory, copy=self.copy,
                                          copy_parallel=self.copy_parallel)

    def path(self, url):
        if not is_remote_url(url):
            return url
        assert url.startswith("obs://"), url
        return os.path.join(self.root, url[len("obs://"):])

    def exists(self, url):
        self.calls.append(("exists", url))
        return os.path.exists(self.path(url))

    def is_directory(self, url):
        self.calls.append(("is_directory", url))
        return os.path.isdir(self.path(url))

    def copy(self, src, dst):
        self.calls.append(("copy", src, dst))
        if self.refuse_uploads and is_remote_url(dst):
            raise PermissionError("403 Forbidden\nAccessDenied")
        os.makedirs(os.path.dirname(self.path(dst)), exist_ok=True)
        shutil.copyfile(self.path(src), self.path(dst))

    def copy_parallel(self, src, dst):
        self.calls.append(("copy_parallel", src, dst))
        shutil.copytree(self.path(src), self.path(dst), dirs_exist_ok=True)

    def uploads(self):
        return [dst for kind, *args in self.calls if kind == "copy" for dst in args[1:] if is_remote_url(dst)]


@pytest.fixture
def mox(tmp_path, monkeypatch):
    fake = FakeMoxing(tmp_path / "obs")
    monkeypatch.setitem(sys.modules, "moxing", fake)
    return fake


@pytest.fixture
def no_moxing(monkeypatch):
    monkeypatch.setitem(sys.modules, "moxing", None)  # `import moxing` raises ImportError


def _put(root, relative, data=b"x"):
    path = os.path.join(str(root), relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _digits_file(path):
    images = np.zeros((MNIST_VAL_COUNT + 2, 28, 28), np.uint8)
    images[:, 10:14, 10:14] = np.arange(len(images), dtype=np.uint64)[:, None, None].astype(np.uint8)
    write_idx_images(str(path), images)
    return images


def _cfg(tiny_cfg, **changes):
    return tiny_cfg.replace(dataset="mnist", **changes)


# ---------------------------------------------------------------- the aliases

def test_data_url_and_train_url_name_data_path_and_output_dir():
    cfg = load_config(["--dataset", "mnist", "--data_url", "obs://b/data", "--train_url=obs://b/run"])
    assert cfg.data_path == "obs://b/data" and cfg.output_dir == "obs://b/run"


@pytest.mark.parametrize("argv, fragment", [
    (["--data_url", "a", "--data_path", "b"], "--data_url and --data_path both given"),
    (["--output_dir", "a", "--train_url", "b"], "--train_url and --output_dir both given"),
    (["--enable_modelarts", "true"], "--enable_modelarts is not needed"),
])
def test_alias_misuse_is_one_line(argv, fragment):
    with pytest.raises(ConfigError) as caught:
        load_config(argv)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_aliases_are_command_line_only(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data_url: obs://b/data\n")
    with pytest.raises(ConfigError, match="unknown config key 'data_url'"):
        load_config(config_path=str(path))


@pytest.mark.parametrize("path, remote", [("obs://bucket/x", True), ("s3://bucket/x/", True),
                                          ("./data", False), ("/cache/data.zip", False), ("C:\\data", False),
                                          ("data:obs", False)])
def test_remote_urls_are_recognised(path, remote):
    assert is_remote_url(path) is remote


# ---------------------------------------------------------------- without moxing

def test_local_paths_need_no_moxing(tiny_cfg, no_moxing, tmp_path):
    cfg = _cfg(tiny_cfg, data_path=str(tmp_path), output_dir=str(tmp_path / "run"))
    with local_copies(cfg, root=str(tmp_path / "local")) as local_cfg:
        assert local_cfg is cfg
    assert not (tmp_path / "local").exists()


def test_remote_url_without_moxing_is_one_line(tiny_cfg, no_moxing, tmp_path):
    cfg = _cfg(tiny_cfg, data_path="obs://bucket/data", output_dir="s3://bucket/run")
    with pytest.raises(ConfigError) as caught:
        with local_copies(cfg, root=str(tmp_path / "local")):
            raise AssertionError("must not run")
    message = str(caught.value)
    for fragment in ("data_path obs://bucket/data (--data_path / --data_url)",
                     "output_dir s3://bucket/run (--output_dir / --train_url)", "moxing", "pass a local path"):
        assert fragment in message, message
    assert not (tmp_path / "local").exists()


@pytest.mark.skipif(importlib.util.find_spec("moxing") is not None, reason="moxing is installed here")
def test_train_py_with_a_remote_url_and_no_moxing(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "--dataset", "mnist", "--data_url", "obs://bucket/data",
                           "--output_dir", str(tmp_path / "run")], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: data_path obs://bucket/data"), proc.stderr
    assert "moxing" in lines[0] and not (tmp_path / "run").exists()


# ---------------------------------------------------------------- data copied in

def test_remote_data_folder_is_copied_in_and_removed_after(tiny_cfg, mox, tmp_path):
    os.makedirs(os.path.join(mox.root, "bucket/mnist"))
    images = _digits_file(os.path.join(mox.root, "bucket/mnist", TRAIN_FILE))
    cfg = _cfg(tiny_cfg, data_path="obs://bucket/mnist", output_dir=str(tmp_path / "run"))
    with local_copies(cfg, root=str(tmp_path / "local")) as local_cfg:
        assert local_cfg.output_dir == cfg.output_dir  # local: untouched
        assert local_cfg.data_path.startswith(str(tmp_path / "local" / "data-"))
        np.testing.assert_array_equal(load_digits(local_cfg, "val"), images[-MNIST_VAL_COUNT:])
    assert ("copy_parallel", "obs://bucket/mnist", local_cfg.data_path) in mox.calls
    assert not os.path.exists(local_cfg.data_path)


def _openi_zip(path):
    """data.zip as OpenI hands it out: data/train-images-idx3-ubyte.gz."""
    folder = os.path.dirname(path)
    images = _digits_file(os.path.join(folder, TRAIN_FILE))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(os.path.join(folder, TRAIN_FILE), f"data/{TRAIN_FILE}")
    os.remove(os.path.join(folder, TRAIN_FILE))
    return images


def test_remote_folder_holding_one_zip_becomes_that_zip(tiny_cfg, mox, tmp_path):
    os.makedirs(os.path.join(mox.root, "bucket/dataset"))
    images = _openi_zip(os.path.join(mox.root, "bucket/dataset/data.zip"))
    cfg = _cfg(tiny_cfg, data_path="obs://bucket/dataset/", output_dir=str(tmp_path / "run"))
    with local_copies(cfg, root=str(tmp_path / "local")) as local_cfg:
        assert os.path.basename(local_cfg.data_path) == "data.zip"
        np.testing.assert_array_equal(load_digits(local_cfg, "train"), images[:-MNIST_VAL_COUNT])
    assert len(os.listdir(tmp_path / "run" / CACHE_DIR)) == 1  # unpacked next to the (local) run


def test_remote_zip_file_is_copied_as_a_file(tiny_cfg, mox, tmp_path):
    os.makedirs(os.path.join(mox.root, "bucket"))
    _openi_zip(os.path.join(mox.root, "bucket/data.zip"))
    cfg = _cfg(tiny_cfg, data_path="obs://bucket/data.zip", output_dir=str(tmp_path / "run"))
    with local_copies(cfg, root=str(tmp_path / "local")) as local_cfg:
        assert ("copy", "obs://bucket/data.zip", local_cfg.data_path) in mox.calls
        assert zipfile.is_zipfile(local_cfg.data_path)


def test_missing_remote_data_is_one_line(tiny_cfg, mox, tmp_path):
    cfg = _cfg(tiny_cfg, data_path="obs://bucket/nothing", output_dir=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match="data_path obs://bucket/nothing .*does not exist on the remote storage"):
        with local_copies(cfg, root=str(tmp_path / "local")):
            raise AssertionError("must not run")
    assert os.listdir(tmp_path / "local") == []


# ---------------------------------------------------------------- output copied in and back

def _remote_run(mox):
    _put(mox.root, "bucket/run/config.yaml", b"old config")
    _put(mox.root, "bucket/run/ckpt/last.ckpt", b"old weights")
    _put(mox.root, "bucket/run/notes.txt", b"unchanged")


def test_output_is_copied_in_and_only_what_the_run_wrote_goes_back(tiny_cfg, mox, tmp_path):
    _remote_run(mox)
    cfg = tiny_cfg.replace(output_dir="obs://bucket/run/")
    with local_copies(cfg, root=str(tmp_path / "local")) as local_cfg:
        local = local_cfg.output_dir
        with open(os.path.join(local, "ckpt", "last.ckpt"), "rb") as f:
            assert f.read() == b"old weights"  # there for --resume auto
        _put(local, "ckpt/last.ckpt", b"new weights")
        _put(local, "log.csv", b"epoch,loss")
        _put(local, f"{CACHE_DIR}/data-0123/data/{TRAIN_FILE}", b"unpacked data")
    assert sorted(mox.uploads()) == ["obs://bucket/run/ckpt/last.ckpt", "obs://bucket/run/log.csv"]
    with open(os.path.join(mox.root, "bucket/run/ckpt/last.ckpt"), "rb") as f:
        assert f.read() == b"new weights"
    assert not os.path.exists(local)


def test_a_process_that_writes_nothing_uploads_nothing(tiny_cfg, mox, tmp_path):
    """Ranks other than 0 write no files, so they copy nothing back over rank 0's upload."""
    _remote_run(mox)
    with local_copies(tiny_cfg.replace(output_dir="obs://bucket/run"), root=str(tmp_path / "local")):
        pass
    assert mox.uploads() == []


def test_new_remote_output_folder(tiny_cfg, mox, tmp_path):
    with local_copies(tiny_cfg.replace(output_dir="obs://bucket/fresh"), root=str(tmp_path / "local")) as local_cfg:
        assert os.listdir(local_cfg.output_dir) == []
        _put(local_cfg.output_dir, "config.yaml")
    assert mox.uploads() == ["obs://bucket/fresh/config.yaml"]


def test_files_saved_before_a_failure_are_copied_back(tiny_cfg, mox, tmp_path):
    with pytest.raises(UserError, match="diverged"):
        with local_copies(tiny_cfg.replace(output_dir="obs://bucket/run"), root=str(tmp_path / "local")) as local_cfg:
            _put(local_cfg.output_dir, "ckpt/last.ckpt", b"saved at Ctrl-C")
            raise UserError("diverged")
    assert mox.uploads() == ["obs://bucket/run/ckpt/last.ckpt"]
    assert not os.path.exists(local_cfg.output_dir)


def test_a_failed_upload_keeps_the_local_files_and_says_where(tiny_cfg, mox, tmp_path):
    mox.refuse_uploads = True
    with pytest.raises(UserError) as caught:
        with local_copies(tiny_cfg.replace(output_dir="obs://bucket/run"), root=str(tmp_path / "local")) as local_cfg:
            _put(local_cfg.output_dir, "log.csv")
    message = str(caught.value)
    assert "PermissionError: 403 Forbidden AccessDenied" in message and "\n" not in message
    assert f"kept in {local_cfg.output_dir}" in message and os.path.isfile(os.path.join(local_cfg.output_dir,
                                                                                          "log.csv"))


def test_a_failed_upload_after_a_failed_run_keeps_the_runs_error(tiny_cfg, mox, tmp_path, capsys):
    mox.refuse_uploads = True
    with pytest.raises(UserError, match="^diverged$"):
        with local_copies(tiny_cfg.replace(output_dir="obs://bucket/run"), root=str(tmp_path / "local")) as local_cfg:
            _put(local_cfg.output_dir, "log.csv")
            raise UserError("diverged")
    assert "warning: copying log.csv to obs://bucket/run/log.csv failed" in capsys.readouterr().out
    assert os.path.isfile(os.path.join(local_cfg.output_dir, "log.csv"))


def test_local_root_prefers_the_job_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(cloud, "CLOUD_DISK", str(tmp_path))
    assert cloud.local_root() == str(tmp_path / cloud.STAGING_DIR)
    monkeypatch.setattr(cloud, "CLOUD_DISK", str(tmp_path / "absent"))
    monkeypatch.setattr(cloud.tempfile, "tempdir", str(tmp_path / "tmp"))
    assert cloud.local_root() == str(tmp_path / "tmp" / cloud.STAGING_DIR)


# ---------------------------------------------------------------- train.py, as a ModelArts job runs it

def test_train_py_main_as_a_modelarts_job(mox, tmp_path, monkeypatch, capsys):
    """--data_url (an OpenI dataset folder with data.zip) and --train_url, both remote."""
    import train

    os.makedirs(os.path.join(mox.root, "bucket/dataset"))
    _openi_zip(os.path.join(mox.root, "bucket/dataset/data.zip"))
    monkeypatch.setattr(cloud, "local_root", lambda: str(tmp_path / "local"))

    def job(epochs, *extra):
        return train.main(["--config_path", "configs/cpu_small.yaml", "--dataset", "mnist", "--data_url",
                           "obs://bucket/dataset", "--train_url", "obs://bucket/job/output", "--hidden_channels", "4",
                           "--kernel_size", "3", "--image_size", "32", "--input_frames", "3", "--output_frames", "2",
                           "--epochs", str(epochs), "--steps_per_epoch", "1", "--batch_size", "1",
                           "--val_sequences", "2", "--num_workers", "1", "--mode", "pynative", *extra])

    assert job(1) == 0
    remote = os.path.join(mox.root, "bucket/job/output")
    for name in ("config.yaml", "log.csv", "ckpt/last.ckpt", "ckpt/convlstm-1_1.ckpt"):
        assert os.path.isfile(os.path.join(remote, name)), name
    assert not os.path.exists(os.path.join(remote, CACHE_DIR))  # the unpacked zip stays on the job's disk
    assert os.listdir(tmp_path / "local") == []  # local copies removed after the upload

    # a second job continues the run from the remote checkpoint, with the checkpoint's config of record
    with pytest.raises(ConfigError, match="trained with another config: lr 0.01 -> 0.5"):
        job(2, "--resume", "auto", "--lr", "0.5")
    capsys.readouterr()
    assert job(2, "--resume", "auto") == 0
    assert "resumed from " in capsys.readouterr().out
    assert os.path.isfile(os.path.join(remote, "ckpt", "convlstm-2_2.ckpt"))
    with open(os.path.join(remote, "log.csv")) as f:
        assert len(f.read().splitlines()) == 3  # header + epochs 1 and 2


@pytest.mark.parametrize("argv", [
    ["--dataset", "mnist", "--data_url", "obs://b/d", "--debug", "--train_url=obs://b/r", "--epochs", "2"],
    ["--dataset", "mnist", "--data-path=obs://b/d", "--output_dir", "obs://b/r", "--debug", "--epochs", "2"],
])
def test_local_argv_points_the_staged_keys_at_the_local_copies(argv):
    cfg = load_config(argv)
    local = cfg.replace(data_path="/local/d", output_dir="/local/r")
    rewritten = cloud.local_argv(argv, cfg, local)
    assert rewritten[-4:] == ["--data_path", "/local/d", "--output_dir", "/local/r"]
    assert sorted(rewritten[:-4]) == sorted(["--dataset", "mnist", "--debug", "--epochs", "2"])
    again = load_config(rewritten)
    assert (again.data_path, again.output_dir, again.epochs, again.debug) == ("/local/d", "/local/r", 2, True)
    assert cloud.local_argv(argv, cfg, cfg) == argv


def test_eval_py_main_with_remote_test_set_and_output(mox, tmp_path, monkeypatch):
    """eval.py as an OpenI job: the test set as a remote zip, the results copied to the remote output."""
    import eval as eval_script
    from src.data.sequences import TEST_FILE
    from tests.data_files import write_test_file

    write_test_file(str(tmp_path / TEST_FILE), np.zeros((2, 20, 32, 32), np.uint8))
    os.makedirs(os.path.join(mox.root, "bucket"))
    with zipfile.ZipFile(os.path.join(mox.root, "bucket/test_set.zip"), "w") as zf:
        zf.write(tmp_path / TEST_FILE, f"data/{TEST_FILE}")
    monkeypatch.setattr(cloud, "local_root", lambda: str(tmp_path / "local"))
    assert eval_script.main(["--config_path", "configs/cpu_small.yaml", "--dataset", "mnist", "--image_size", "32",
                             "--baseline", "zeros", "--data_url", "obs://bucket/test_set.zip",
                             "--train_url", "obs://bucket/eval"]) == 0
    assert sorted(os.listdir(os.path.join(mox.root, "bucket/eval"))) == ["metrics.json", "metrics_per_frame.png"]
    assert os.listdir(tmp_path / "local") == []
