"""Test helpers for the export / prediction tests: running the scripts as a user does, reading
their one-line errors, and tiny generated checkpoints and test files."""
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = os.path.join(REPO, "configs", "cpu_small.yaml")


def run_script(args, cwd=REPO, timeout=300, env=None):
    """Run a repository script (python file or bash script) and return the CompletedProcess."""
    cmd = ["bash"] + args if args[0].endswith(".sh") else [sys.executable] + args
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=REPO, **(env or {}))
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_without_onnxruntime(script, args, cwd=REPO):
    """Run ``script`` in a Python where ``import onnxruntime`` fails (as when it is not installed)."""
    code = ("import runpy, sys; sys.modules['onnxruntime'] = None; sys.path.insert(0, sys.argv[1]); "
            "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-c", code, REPO, os.path.join(REPO, script)] + list(args), cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def messages(stderr):
    """stderr without MindSpore's own log lines ([WARNING] ... / [INFO] ...)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("[")]


def assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = messages(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def value_after(text, label):
    """The float printed right after ``label`` in ``text``."""
    tail = text.split(label, 1)[1].split()[0]
    return float(tail)


def tiny_config(output_dir, **overrides):
    """cpu_small.yaml shrunk: by default a paper network of one 4-channel layer on 64x64 frames."""
    from src.config import load_config

    values = dict(hidden_channels=[4], patch_size=4, image_size=64, output_dir=str(output_dir))
    values.update(overrides)
    return load_config(config_path=SMALL, **values)


def save_tiny_checkpoint(path, cfg):
    """A freshly initialised network of ``cfg`` saved as a checkpoint with its config."""
    from src.models.network import build_network
    from src.checkpoint import save_checkpoint

    save_checkpoint(str(path), build_network(cfg), cfg, meta={}, optimizer=None)
    return str(path)


def write_random_test_file(path, count, seed=7):
    """A ``count``-sequence mnist_test_seq.npy in the published (20, N, 64, 64) uint8 layout;
    returns the sequences (N, 20, 64, 64)."""
    from tests.data_files import write_test_file

    sequences = (np.random.default_rng(seed).random((count, 20, 64, 64)) * 256).astype(np.uint8)  # (N, T, H, W)
    write_test_file(str(path), sequences)
    return sequences
