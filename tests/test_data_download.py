"""download.sh, offline: usage, no-network message, keeping valid files, rejecting bad downloads."""
import os
import subprocess
import sys

import numpy as np
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO_ROOT, "download.sh")
UNREACHABLE = "http://127.0.0.1:9/unreachable"  # discard port: connection refused at once


def _run(*args, **env):
    full_env = dict(os.environ, PYTHON=sys.executable, MNIST_URL=UNREACHABLE + "/mnist.gz",
                    MOVING_MNIST_URL=UNREACHABLE + "/test.npy", no_proxy="*", NO_PROXY="*")
    full_env.update(env)
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=full_env, timeout=60,
                          check=False)


def _sparse_test_file(path):
    """A file with the header, size and layout of mnist_test_seq.npy, without writing 820 MB."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(20, 10000, 64, 64))
    array.flush()
    del array


@pytest.mark.parametrize("args", [(), ("a", "b")])
def test_usage(args):
    result = _run(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: bash download.sh DATA_DIR")
    assert "downloading" not in result.stdout


def test_no_network_message(tmp_path):
    result = _run(str(tmp_path / "data"))
    assert result.returncode != 0
    lines = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 2  # one clear line per missing file
    assert "could not download train-images-idx3-ubyte.gz (no network" in lines[0]
    assert "copy train-images-idx3-ubyte.gz into" in lines[0] and "by hand" in lines[0]
    assert "could not download mnist_test_seq.npy" in lines[1]
    assert os.listdir(tmp_path / "data") == []  # no .part left behind


def test_valid_file_is_kept_without_download(tmp_path):
    target = tmp_path / "mnist_test_seq.npy"
    _sparse_test_file(str(target))
    before = target.stat().st_mtime_ns
    result = _run(str(tmp_path))
    assert "ok: " in result.stdout and "mnist_test_seq.npy already present and valid" in result.stdout
    assert "test.npy" not in result.stdout  # its download address was never used
    assert target.stat().st_mtime_ns == before
    assert result.returncode != 0  # the MNIST file is still missing


def test_invalid_file_is_fetched_again_and_bad_download_refused(tmp_path):
    (tmp_path / "mnist_test_seq.npy").write_bytes(b"\x93NUMPY" + bytes(100))
    junk = tmp_path / "junk.html"
    junk.write_text("<html>moved</html>")
    result = _run(str(tmp_path), MOVING_MNIST_URL=f"file://{junk}")
    assert "present but invalid" in result.stdout
    assert "every download of mnist_test_seq.npy failed verification" in result.stderr
    assert (tmp_path / "mnist_test_seq.npy").stat().st_size == 106  # the old file is not replaced by junk
    assert not (tmp_path / "mnist_test_seq.npy.part").exists()
