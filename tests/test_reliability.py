"""Reliability, end to end: faults and bad input never lose work and always explain themselves.

Every case runs the real entry points (train.py, eval.py, export.py) as subprocesses and checks
what a user sees and keeps:
- user errors exit 2 with exactly one stderr line ``error: ...`` naming the file or key, and
  no Python traceback (unless ``--debug``);
- files that existed before a failure (checkpoints, log.csv, history.json) are byte-identical
  after it;
- Ctrl-C saves the current step and exits 130; SIGKILL loses at most one save interval; and
  either way ``--resume auto`` ends with the weights of an uninterrupted run.

Commands that import MindSpore take seconds each, so they are started in the background when
the module starts (``Lab``, at most ``WORKERS`` at a time) while the cheap cases run; each
test then checks the outcome of its own command. One uninterrupted reference run (2 epochs x
4 steps of a 4-channel network on 32x32 frames) is shared by the cases that need a run
directory or a checkpoint; each case works on its own copy.
"""
import gzip
import json
import os
import pickle
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
TIMEOUT = 180  # seconds per subprocess: a hung command fails its test instead of blocking the suite
WORKERS = 2  # slow commands running at once

# The tiny training configuration (configs/cpu_small.yaml shrunk to ~0.3 s per step).
TINY = {"config_path": "configs/cpu_small.yaml", "arch": "paper", "hidden_channels": "4", "kernel_size": "3",
        "image_size": "32", "input_frames": "3", "output_frames": "2", "batch_size": "2", "steps_per_epoch": "3",
        "val_sequences": "2", "num_workers": "1", "mode": "pynative", "log_every": "1"}
# The reference run and the interrupted runs compared with it.
# The reference run and the interrupted runs compared with it run in graph mode, the shipped default.
RUN = dict(TINY, epochs="2", steps_per_epoch="4", mode="graph")
STEPS = int(RUN["steps_per_epoch"])
FILE_SIZE_LIMIT_KB = 16  # simulated full disk: less than one checkpoint, more than config.yaml


def cli(base=None, **overrides):
    """``--key value`` arguments: ``base`` (default TINY) updated with ``overrides``."""
    merged = dict(TINY if base is None else base)
    merged.update(overrides)
    argv = []
    for key, value in merged.items():
        argv += [f"--{key}", str(value)]
    return argv


def _env():
    env = dict(os.environ)
    for name in ("GLOG_v",):  # MindSpore's default log level
        env.pop(name, None)
    return env


def run(script, argv, prefix=(), timeout=TIMEOUT):
    """Run a repository script to completion (killed after ``timeout`` seconds)."""
    return subprocess.run(list(prefix) + [PY, script] + list(argv), cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


class Background:
    """A script running in the background with stdout/stderr in files; always reaped."""

    def __init__(self, script, argv, log_dir):
        os.makedirs(log_dir, exist_ok=True)
        self.out_path, self.err_path = os.path.join(log_dir, "stdout.txt"), os.path.join(log_dir, "stderr.txt")
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen([PY, script] + list(argv), cwd=REPO, env=_env(), stdout=out, stderr=err)

    def stdout(self):
        with open(self.out_path) as f:
            return f.read()

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def wait_for(self, condition, what, timeout=TIMEOUT):
        """Poll ``condition()`` every 20 ms; fail if the process ends or time runs out first."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise AssertionError(f"process ended (exit {self.proc.returncode}) before {what}:\n"
                                     f"{self.stdout()[-2000:]}\n{self.stderr()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def wait(self, timeout=TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)


# ---------------------------------------------------------------- assertions and helpers

def assert_one_line_error(proc, *fragments, code=2):
    """Exit ``code``, stderr exactly one line ``error: ...`` holding every fragment, no traceback."""
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}:\n{proc.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def snapshot(root):
    """Every file under ``root`` -> its bytes (relative paths)."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def assert_unchanged(before, root, ignore=()):
    """Same files with the same bytes (no file added, removed or rewritten), ``ignore`` aside."""
    before, after = dict(before), snapshot(root)
    for rel in ignore:
        before.pop(rel, None)
        after.pop(rel, None)
    assert sorted(after) == sorted(before), f"files added or removed: {sorted(set(after) ^ set(before))}"
    changed = [rel for rel in before if before[rel] != after[rel]]
    assert not changed, f"files rewritten by a failed command: {changed}"


def ckpt_arrays(path):
    """Every parameter of a checkpoint (network weights and optimizer state) as numpy arrays."""
    from src.checkpoint import read_checkpoint

    return {name: value.asnumpy() for name, value in read_checkpoint(path).items() if hasattr(value, "asnumpy")}


def ckpt_meta(path):
    from src.checkpoint import checkpoint_meta, read_checkpoint

    return checkpoint_meta(read_checkpoint(path))


def assert_same_weights(path_a, path_b):
    a, b = ckpt_arrays(path_a), ckpt_arrays(path_b)
    assert sorted(a) == sorted(b)
    assert any(name.startswith("moment1.") for name in a)  # the optimizer state is compared too
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def history(run_dir):
    """(epoch, train loss, validation mse) rows of a run's history.json."""
    with open(os.path.join(run_dir, "history.json")) as f:
        return [(row["epoch"], row["train_loss"], row.get("val_mse")) for row in json.load(f)]


class _Evil:
    """Unpickling this creates ``marker``: proof that a file was (or was not) unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


# ---------------------------------------------------------------- slow commands, run in the background

SLOW_JOBS = []  # (key, function(lab, workdir, case) -> outcome), in the order the tests need them


def slow_job(*keys):
    def register(fn):
        for key in keys:
            SLOW_JOBS.append((key, fn))
        return fn
    return register


class Lab:
    """Runs the reference run and every SLOW_JOBS entry in background threads, WORKERS at a time."""

    def __init__(self, root):
        self.root = root
        # a private copy: the repository's recipe may change while the module runs, and the
        # reference and the resumed runs must train with the same one
        self.config = shutil.copy(os.path.join(REPO, RUN["config_path"]), os.path.join(root, "cpu_small.yaml"))
        self.pool = ThreadPoolExecutor(max_workers=WORKERS)
        self.jobs = {"reference": self.pool.submit(self._reference)}
        for key, fn in SLOW_JOBS:
            workdir = os.path.join(root, re.sub(r"\W+", "_", key))
            os.makedirs(workdir)
            self.jobs[key] = self.pool.submit(fn, self, workdir, key.split(": ", 1)[-1])

    def args(self, **overrides):
        """The reference run's arguments (on the private recipe) with ``overrides``."""
        return cli(dict(RUN, config_path=self.config), **overrides)

    def _reference(self):
        return run("train.py", self.args(output_dir=os.path.join(self.root, "reference")))

    def result(self, key):
        return self.jobs[key].result(timeout=20 * TIMEOUT)

    @property
    def reference(self):
        """The finished reference run directory."""
        proc = self.result("reference")
        assert proc.returncode == 0, f"reference run failed:\n{proc.stdout[-3000:]}\n{proc.stderr}"
        return os.path.join(self.root, "reference")

    @property
    def reference_last(self):
        return os.path.join(self.reference, "ckpt", "last.ckpt")

    def copy_reference(self, workdir):
        """A private copy of the finished reference run directory."""
        return shutil.copytree(self.reference, os.path.join(workdir, "run"))

    def close(self):
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module", autouse=True)
def _background(request, tmp_path_factory):
    """Start the slow commands with the module's first test, if any selected test needs them."""
    selected = [item for item in request.session.items if getattr(item, "module", None) is request.module]
    if not any("lab" in item.fixturenames for item in selected):
        yield None
        return
    started = Lab(str(tmp_path_factory.mktemp("reliability")))
    yield started
    started.close()


@pytest.fixture(scope="module")
def lab(_background):
    return _background


# ---------------------------------------------------------------- configuration

CONFIG_CASES = {
    "unknown key": (cli(batch_sise="2"), ["'batch_sise'", "did you mean 'batch_size'"]),
    "wrong type": (cli(batch_size="two"), ["'batch_size'", "expected int"]),
    "not a choice": (cli(mode="fast"), ["'mode'", "graph, pynative"]),
    "batch 0": (cli(batch_size="0"), ["'batch_size'", "must be >= 1"]),
    "negative lr": (cli(lr="-0.1"), ["'lr'", "must be > 0"]),
    "input longer than the sequence": (cli(dataset="mnist", input_frames="15", output_frames="10"),
                                       ["'input_frames'", "<= 20"]),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config_value_is_one_line_naming_the_key(tmp_path, case):
    argv, fragments = CONFIG_CASES[case]
    proc = run("train.py", argv + ["--output_dir", str(tmp_path / "run")])
    assert_one_line_error(proc, *fragments)
    assert not os.path.exists(tmp_path / "run")  # refused before anything is created


YAML_CASES = {  # entry point, yaml text, fragment; the line also names the file (except for impossible values)
    "unknown key": ("train.py", "learning_rate: 0.1\n", "'learning_rate'"),
    "wrong type": ("eval.py", "epochs: [1, 2]\n", "'epochs'"),
    "impossible value": ("export.py", "batch_size: 0\n", "'batch_size': must be >= 1"),
    "not a mapping": ("eval.py", "- 1\n- 2\n", "must be a mapping"),
    "python tag (safe_load only)": ("train.py", "seed: !!python/object/apply:os.system ['touch {marker}']\n",
                                    "not valid yaml"),
}


@pytest.mark.parametrize("case", list(YAML_CASES))
def test_bad_config_file_is_one_line_naming_file_and_key(tmp_path, case):
    script, text, fragment = YAML_CASES[case]
    marker = tmp_path / "executed"
    path = tmp_path / "bad.yaml"
    path.write_text(text.format(marker=marker))
    proc = run(script, ["--config_path", str(path), "--output_dir", str(tmp_path / "run")])
    assert_one_line_error(proc, fragment, *([] if case == "impossible value" else [str(path)]))
    assert not marker.exists(), "the yaml tag was executed: configs must be read with yaml.safe_load"


def test_debug_flag_shows_the_traceback(tmp_path):
    argv = cli(batch_size="0") + ["--output_dir", str(tmp_path / "run")]
    plain = run("train.py", argv)
    debug = run("train.py", argv + ["--debug"])
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" not in plain.stderr
    assert "Traceback (most recent call last)" in debug.stderr and "ConfigError" in debug.stderr
    assert debug.stderr.splitlines()[-1] == plain.stderr.strip()


def test_sources_never_unpickle_or_load_unsafe_yaml():
    """No pickle loading and no unsafe yaml in src/ and the scripts; every np.load refuses pickles."""
    forbidden = re.compile(r"allow_pickle\s*=\s*True|pickle\.loads?\(|yaml\.load\(|yaml\.unsafe_load|"
                           r"yaml\.full_load|Loader\s*=\s*yaml\.(Unsafe|Full)?Loader|torch\.load\(")
    np_load = re.compile(r"\bnp\.load\(")

    def offences(text):
        found = [m.group(0) for m in forbidden.finditer(text)]
        return found + [line.strip() for line in text.splitlines()
                        if np_load.search(line) and "allow_pickle=False" not in line]

    assert len(offences("a = pickle.load(f)\nb = np.load(p)\nc = yaml.load(s)\n")) == 3  # the scanner works
    sources = [os.path.join(REPO, n) for n in os.listdir(REPO) if n.endswith(".py")]
    for folder, _, names in os.walk(os.path.join(REPO, "src")):
        sources += [os.path.join(folder, n) for n in names if n.endswith(".py")]
    assert len(sources) > 10
    bad = {}
    for path in sources:
        with open(path, encoding="utf-8") as f:
            found = offences(f.read())
        if found:
            bad[os.path.relpath(path, REPO)] = found
    assert not bad, bad


# ---------------------------------------------------------------- data files

def _npy(array):
    def write(f, marker):
        np.save(f, array)
    return write


def _pickled_object_array(f, marker):
    np.save(f, np.array([_Evil(str(marker))], dtype=object), allow_pickle=True)


def _plain_pickle(f, marker):
    pickle.dump(_Evil(str(marker)), f)


_NAN = np.zeros((20, 3, 64, 64), np.float32)
_NAN[0, 0, 0, 0] = np.nan
NPY_CASES = {  # mnist_test_seq.npy content, fragment of the error line
    "wrong shape (3-D)": (_npy(np.zeros((20, 3, 64), np.uint8)), "expected 4 dimensions"),
    "wrong shape (5 frames)": (_npy(np.zeros((5, 3, 64, 64), np.uint8)), "sequences have 5 frames"),
    "wrong frame size": (_npy(np.zeros((20, 3, 32, 32), np.uint8)), "frames are 32x32, expected 64x64"),
    "wrong dtype": (_npy(np.zeros((20, 3, 64, 64), np.float64)), "dtype float64"),
    "NaN": (_npy(_NAN), "dtype float32, expected uint8"),
    "pickled object array": (_pickled_object_array, "holds pickled Python objects"),
    "plain pickle": (_plain_pickle, "is a Python pickle (refused"),
}


@pytest.mark.parametrize("case", sorted(NPY_CASES))
def test_bad_test_set_file_is_refused_in_one_line(tmp_path, case):
    write, fragment = NPY_CASES[case]
    data = tmp_path / "data"
    data.mkdir()
    path = data / "mnist_test_seq.npy"
    marker = tmp_path / "unpickled"
    with open(path, "wb") as f:
        write(f, marker)
    proc = run("eval.py", ["--config_path", "configs/cpu_small.yaml", "--dataset", "mnist", "--data_path",
                           str(data), "--baseline", "zeros", "--output_dir", str(tmp_path / "eval")])
    assert_one_line_error(proc, str(path), fragment)
    assert not marker.exists(), "the file was unpickled"
    assert not os.path.exists(tmp_path / "eval")


@pytest.mark.parametrize("layout", ["missing", "directory instead of file", "data_path missing"])
def test_missing_test_set_names_path_and_download_script(tmp_path, layout):
    data = tmp_path / "data"
    if layout != "data_path missing":
        data.mkdir()
    if layout == "directory instead of file":
        (data / "mnist_test_seq.npy").mkdir()
    proc = run("eval.py", cli(dataset="mnist", data_path=str(data), baseline="zeros",
                              output_dir=str(tmp_path / "eval")))
    fragment = "does not exist" if layout == "data_path missing" else "mnist_test_seq.npy not found"
    assert_one_line_error(proc, str(data), fragment, "download.sh")


def _idx(count=10, rows=28, cols=28, magic=2051, pixels=None):
    """IDX image bytes: big-endian header (magic, count, rows, cols), then the pixels."""
    body = bytes(count * rows * cols) if pixels is None else pixels
    return struct.pack(">iiii", magic, count, rows, cols) + body


def _no_file(path):
    pass


def _truncated_gz(path):
    data = gzip.compress(_idx(count=50))
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])


def _corrupt_gz(path):
    data = bytearray(gzip.compress(_idx(count=50, pixels=bytes(range(256)) * 153 + bytes(50 * 784 - 256 * 153))))
    for i in range(12, len(data) - 8, 7):  # damage the deflate stream, keep the gzip header
        data[i] ^= 0x5A
    with open(path, "wb") as f:
        f.write(bytes(data))


def _wrong_magic(path):
    with open(path, "wb") as f:
        f.write(gzip.compress(_idx(magic=2049)))  # 2049: the MNIST *labels* file


def _wrong_dimensions(path):
    with open(path, "wb") as f:
        f.write(gzip.compress(_idx(count=10, rows=28, cols=28, pixels=bytes(10 * 28 * 27))))


TRAIN_DATA_CASES = {  # train-images-idx3-ubyte.gz writer, fragments of the error line
    "missing": (_no_file, ["not found in data_path", "--dataset synthetic"]),
    "truncated gz": (_truncated_gz, ["{path}", "gzip stream is truncated"]),
    "corrupt gz": (_corrupt_gz, ["{path}", "corrupt gzip data"]),
    "wrong magic": (_wrong_magic, ["{path}", "magic number 2049 is not 2051"]),
    "wrong dimensions": (_wrong_dimensions, ["{path}", "header says 10x28x28 = 7840 bytes, file holds 7560"]),
}


@slow_job(*[f"train data: {case}" for case in TRAIN_DATA_CASES])
def _train_on_bad_data(lab, workdir, case):
    write = TRAIN_DATA_CASES[case][0]
    data = os.path.join(workdir, "data")
    os.makedirs(data)
    write(os.path.join(data, "train-images-idx3-ubyte.gz"))
    return data, run("train.py", cli(dataset="mnist", data_path=data, output_dir=os.path.join(workdir, "run")))


@pytest.mark.parametrize("case", list(TRAIN_DATA_CASES))
def test_bad_training_data_names_the_file_and_how_to_get_it(lab, case):
    data, proc = lab.result(f"train data: {case}")
    path = os.path.join(data, "train-images-idx3-ubyte.gz")
    fragments = [f.format(path=path) for f in TRAIN_DATA_CASES[case][1]]
    assert_one_line_error(proc, data, "train-images-idx3-ubyte.gz", "download.sh", *fragments)


# ---------------------------------------------------------------- checkpoints

def _truncate(src, dst):
    with open(src, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data[:len(data) // 2])


def _garbage(src, dst):
    with open(dst, "wb") as f:
        f.write(np.random.default_rng(0).bytes(4096))


CORRUPT_CASES = {"eval.py, truncated": ("eval.py", _truncate), "train.py --resume, garbage": ("train.py", _garbage)}


@slow_job(*[f"corrupt: {case}" for case in CORRUPT_CASES])
def _use_corrupt_checkpoint(lab, workdir, case):
    script, damage = CORRUPT_CASES[case]
    run_dir = lab.copy_reference(workdir)
    bad = os.path.join(run_dir, "ckpt", "damaged.ckpt")
    damage(lab.reference_last, bad)
    before = snapshot(run_dir)
    if script == "eval.py":
        argv = lab.args(ckpt_file=bad, dataset="synthetic", num_sequences="2", output_dir=run_dir)
    else:
        argv = lab.args(epochs="3", resume=bad, output_dir=run_dir)
    return run_dir, bad, before, run(script, argv)


@pytest.mark.parametrize("case", list(CORRUPT_CASES))
def test_corrupt_checkpoint_is_refused_and_nothing_is_overwritten(lab, case):
    run_dir, bad, before, proc = lab.result(f"corrupt: {case}")
    assert_one_line_error(proc, bad, "is corrupt or not a MindSpore checkpoint")
    assert_unchanged(before, run_dir)  # eval wrote no eval/ directory, train no checkpoint


@slow_job("architecture: eval.py", "architecture: train.py")
def _use_other_architecture(lab, workdir, script):
    run_dir = lab.copy_reference(workdir)
    before = snapshot(run_dir)
    if script == "eval.py":
        argv = lab.args(hidden_channels="6", ckpt_file=lab.reference_last, dataset="synthetic", num_sequences="2",
                        output_dir=run_dir)
    else:
        argv = lab.args(hidden_channels="6", epochs="3", resume="auto", output_dir=run_dir)
    return run_dir, before, run(script, argv)


@pytest.mark.parametrize("script", ["eval.py", "train.py"])
def test_checkpoint_of_another_architecture_is_refused(lab, script):
    run_dir, before, proc = lab.result(f"architecture: {script}")
    expected = {"eval.py": "hidden_channels=[4] but the config asks for hidden_channels=[6]",
                "train.py": "was trained with another config: hidden_channels [4] -> [6]"}  # resume: config of record
    assert_one_line_error(proc, expected[script])
    assert_unchanged(before, run_dir)


def test_checkpoint_without_optimizer_state_cannot_resume(tmp_path, lab):
    from src.config import load_config
    from src.models.network import build_network
    from src.checkpoint import checkpoint_meta, load_weights, read_checkpoint, save_checkpoint

    run_dir = lab.copy_reference(str(tmp_path))
    cfg = load_config(lab.args()[2:], config_path=lab.config)
    net = build_network(cfg)
    data = read_checkpoint(lab.reference_last)
    load_weights(net, data, lab.reference_last)
    weights_only = str(tmp_path / "weights_only.ckpt")
    save_checkpoint(weights_only, net, cfg, checkpoint_meta(data), optimizer=None)
    assert not any(name.startswith("moment1.") for name in ckpt_arrays(weights_only))
    before = snapshot(run_dir)
    proc = run("train.py", lab.args(epochs="3", resume=weights_only, output_dir=run_dir))
    assert_one_line_error(proc, weights_only, "has no optimizer state", "cannot be resumed")
    assert_unchanged(before, run_dir)


# ---------------------------------------------------------------- training faults

@slow_job("nan")
def _diverge(lab, workdir, _):
    run_dir = lab.copy_reference(workdir)
    before = snapshot(run_dir)
    # an absurd learning rate: the first update sends the weights to ~1e38 and a later loss overflows
    # (a resume keeps the checkpoint's config unless told otherwise: --allow_config_change)
    argv = lab.args(epochs="3", resume="auto", lr="3e38", lr_schedule="constant", grad_clip="0", output_dir=run_dir,
                    allow_config_change="true")
    return run_dir, before, run("train.py", argv)


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_last_good_checkpoint(lab):
    run_dir, before, proc = lab.result("nan")
    last = os.path.join(run_dir, "ckpt", "last.ckpt")
    line = assert_one_line_error(proc, " at epoch 3 step ", last, "is the last good checkpoint", "--lr", code=3)
    step = int(re.search(r"loss became (?:nan|inf|-inf) at epoch 3 step (\d+);", line).group(1))
    logged = [int(s) for s in re.findall(r"epoch: 3 step: (\d+), loss is", proc.stdout)]
    assert step >= 2 and logged == list(range(1, step)), proc.stdout  # finite steps, then the divergence
    # config.yaml and config_changes.log record the attempted run
    assert_unchanged(before, run_dir, ignore=["config.yaml", "config_changes.log"])
    assert ckpt_meta(last)["epoch"] == 2


@slow_job("disk full")
def _fill_disk(lab, workdir, _):
    run_dir = lab.copy_reference(workdir)
    before = snapshot(run_dir)
    # a full disk, simulated by a file-size limit: writing the next checkpoint fails part-way
    limit = ["bash", "-c", f'ulimit -f {FILE_SIZE_LIMIT_KB} && exec "$0" "$@"']
    argv = lab.args(epochs="3", steps_per_epoch="1", resume="auto", output_dir=run_dir, allow_config_change="true")
    return run_dir, before, run("train.py", argv, prefix=limit)


def test_failed_checkpoint_write_keeps_previous_checkpoint_and_logs(lab):
    run_dir, before, proc = lab.result("disk full")
    assert len(before[os.path.join("ckpt", "last.ckpt")]) > FILE_SIZE_LIMIT_KB * 1024  # the limit bites
    assert_one_line_error(proc, "could not write checkpoint", os.path.join(run_dir, "ckpt", "convlstm-3_"),
                          "previous checkpoints and logs are unchanged", "--resume auto")
    assert "epoch: 3 step: 1, loss is" in proc.stdout
    # and no partial or temporary file is left
    assert_unchanged(before, run_dir, ignore=["config.yaml", "config_changes.log"])


@slow_job("existing run")
def _train_into_existing_run(lab, workdir, _):
    run_dir = lab.copy_reference(workdir)
    before = snapshot(run_dir)
    return run_dir, before, run("train.py", lab.args(output_dir=run_dir))


def test_existing_run_is_not_overwritten(lab):
    run_dir, before, proc = lab.result("existing run")
    assert_one_line_error(proc, "'output_dir'", run_dir, "already holds a run", "--resume auto", "--overwrite")
    assert_unchanged(before, run_dir)


def test_activation_memory_estimate_is_printed_at_start(lab):
    lab.reference  # noqa: B018 (waits for the run)
    out = lab.result("reference").stdout
    match = re.search(r"estimated activation memory for batch_size 2: (\d+\.\d+) GB per device \(lower "
                      r"--batch_size if this exceeds device memory\)", out)
    assert match, out[:3000]
    assert match.start() < out.index("loss is")  # before the first step


@slow_job("sigint")
def _interrupt(lab, workdir, _):
    run_dir = os.path.join(workdir, "run")
    job = Background("train.py", lab.args(output_dir=run_dir), os.path.join(workdir, "logs"))
    try:
        job.wait_for(lambda: "loss is" in job.stdout(), "the first logged step")
        job.proc.send_signal(signal.SIGINT)
        code = job.wait()
    finally:
        job.kill()
    interrupted = shutil.copy(os.path.join(run_dir, "ckpt", "last.ckpt"), os.path.join(workdir, "interrupted.ckpt"))
    resumed = run("train.py", lab.args(output_dir=run_dir, resume="auto"))
    return run_dir, code, job.stderr(), interrupted, resumed


def test_ctrl_c_saves_current_step_exits_130_and_resumes_identically(lab):
    run_dir, code, stderr, interrupted, resumed = lab.result("sigint")
    last = os.path.join(run_dir, "ckpt", "last.ckpt")
    assert code == 130, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 2 and "Traceback" not in stderr, stderr
    assert lines[0] == ("stop requested (Ctrl-C or SIGTERM): saving a checkpoint after the current step "
                        "(press Ctrl-C again to abort without saving)")
    match = re.fullmatch(r"stopped at epoch 1 step (\d+); saved (.+); continue with --resume auto", lines[1])
    assert match and match.group(2) == last, lines[1]
    step = int(match.group(1))
    meta = ckpt_meta(interrupted)
    assert (meta["epoch"], meta["step_in_epoch"]) == (0, step) and 0 < step < STEPS, meta

    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr
    assert f"continuing at epoch 1 step {step + 1}" in resumed.stdout
    assert resumed.stderr == ""
    assert_same_weights(last, lab.reference_last)
    assert history(run_dir) == history(lab.reference)


@slow_job("sigkill")
def _kill(lab, workdir, _):
    from src.config import load_config

    run_dir = os.path.join(workdir, "run")
    ckpt_dir = os.path.join(run_dir, "ckpt")
    # a run killed before its first checkpoint leaves only config.yaml: resume auto starts it again
    os.makedirs(run_dir)
    load_config(lab.args(output_dir=run_dir)[2:], config_path=lab.config).save(
        os.path.join(run_dir, "config.yaml"))

    def epoch_one_saved():
        names = os.listdir(ckpt_dir) if os.path.isdir(ckpt_dir) else []
        return any(n.startswith("convlstm-1_") for n in names) and os.path.isfile(os.path.join(run_dir, "history.json"))

    job = Background("train.py", lab.args(output_dir=run_dir, resume="auto"), os.path.join(workdir, "logs"))
    try:
        job.wait_for(epoch_one_saved, "epoch 1's checkpoint")
        job.proc.send_signal(signal.SIGKILL)
        code = job.wait()
    finally:
        job.kill()
    killed = shutil.copy(os.path.join(ckpt_dir, "last.ckpt"), os.path.join(workdir, "killed.ckpt"))
    resumed = run("train.py", lab.args(output_dir=run_dir, resume="auto"))
    return run_dir, code, job.stdout(), killed, resumed


def test_sigkill_loses_at_most_one_save_interval_and_resumes_identically(lab):
    run_dir, code, first_stdout, killed, resumed = lab.result("sigkill")
    assert code == -signal.SIGKILL
    assert "resume auto: no checkpoint at" in first_stdout and "starting a new run" in first_stdout
    meta = ckpt_meta(killed)
    assert (meta["epoch"], meta["step_in_epoch"]) == (1, 0), meta  # killed in epoch 2, after epoch 1's save

    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr
    assert "continuing at epoch 2 step 1" in resumed.stdout
    assert resumed.stderr == ""
    assert_same_weights(os.path.join(run_dir, "ckpt", "last.ckpt"), lab.reference_last)
    assert history(run_dir) == history(lab.reference)
    assert not [n for n in os.listdir(os.path.join(run_dir, "ckpt")) if n.startswith(".tmp")]
