"""Data-parallel training: the launchers and a real two-worker run on CPU.

The real run starts scripts/run_distribute_train_cpu.sh (msrun, 2 CPU workers, MindSpore's
TCP collectives) on a tiny config with tests/rank_recorder.py as the workers' interpreter, so
that every rank saves its final weights, the digests of the sequences it trained on and its
history. It checks that both
ranks trained, that their weights are identical (gradients averaged), that they saw disjoint
sequences (the ones src/data/pipeline.py assigns them), that only rank 0 wrote the run
directory, and that the result equals one process training with the global batch.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from src.config import load_config
from src.errors import ConfigError
from tests import rank_recorder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(REPO, "scripts")
CONFIG = os.path.join(REPO, "configs", "cpu_small.yaml")
WORKERS, BATCH, STEPS = 2, 2, 2
# small enough that a worker's training takes seconds; most of the run is start-up. The loss is
# HKO-7's balanced one (pixel-value classes on the digits), so it is the loss the ranks agree on; the network
# reads true frames by a scheduled-sampling mask drawn for the global batch, each rank taking its rows.
TINY = dict(arch="stacked", sampling="scheduled", sampling_stop=1.0, loss_frames="all", hidden_channels="4", kernel_size=3, patch_size=4, image_size=32, input_frames=3,
            output_frames=2, epochs=1, steps_per_epoch=STEPS, batch_size=BATCH, val_sequences=2, eval_batch_size=2,
            num_workers=1, optimizer="sgd", grad_clip=0, lr=0.5, lr_schedule="cosine", min_lr=0.05, log_every=1,
            loss="balanced", loss_thresholds="[0.1,0.3,0.5,0.7,0.9]", ssim_weight=0,
            mode="graph",
            dataset="synthetic", seed=3)
RUN_TIMEOUT_S = 180


def overrides(**changes):
    values = dict(TINY, **changes)
    return [token for key, value in values.items() for token in (f"--{key}", str(value))]


def descendants(pid):
    """Every process below ``pid`` (msrun starts its workers in sessions of their own, so they
    are not in the launcher's process group)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_tree(proc):
    """Kill the launcher and everything it started, by pid."""
    for pid in descendants(proc.pid) + [proc.pid]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


digest, load_dump = rank_recorder.digest, rank_recorder.load


def msrun_available():
    try:
        import mindspore.parallel.cluster.run  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- the real two-worker run
def launcher_env(cwd, **extra):
    """Environment of a real CPU launcher run: msrun from this interpreter's bin directory when it
    is there (else the script uses the module), every rank recorded into ``cwd/dump_rank<r>.npz``
    (the recorder's interpreter lives outside ``cwd``)."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    bin_dir = cwd.parent / f"{cwd.name}_bin"
    bin_dir.mkdir(exist_ok=True)
    python = rank_recorder.interpreter(str(bin_dir), str(cwd / "dump_"))
    return dict(os.environ, PYTHON=python, PATH=path, CLUSTER_TIME_OUT="60", **extra)


def start_cpu_launcher(cwd, workers, env, **changes):
    """Start scripts/run_distribute_train_cpu.sh in ``cwd`` (output_dir "run", relative: resolved
    against the caller's directory); console output goes to cwd/console.txt."""
    cmd = ["bash", os.path.join(SCRIPTS, "run_distribute_train_cpu.sh"), str(workers), CONFIG,
           *overrides(output_dir="run", **changes)]
    out = open(cwd / "console.txt", "w", encoding="utf-8")  # pylint: disable=consider-using-with
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def finish(proc, cwd, expect_code=0):
    """Wait for a launcher started by ``start_cpu_launcher``; fail with its logs if it hangs or
    exits otherwise than ``expect_code`` (None: any exit). Returns its console text."""
    try:
        code = proc.wait(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        pytest.fail(f"the launcher in {cwd} did not finish in {RUN_TIMEOUT_S} s; console:\n"
                    + (cwd / "console.txt").read_text()[-3000:])
    finally:
        if proc.poll() is None:
            kill_tree(proc)
    text = (cwd / "console.txt").read_text()
    if expect_code is not None and code != expect_code:
        logs = cwd / "run" / "msrun_logs"
        worker_logs = "".join(f"\n--- {p.name}\n" + p.read_text()[-2000:] for p in sorted(logs.glob("*.log")))
        pytest.fail(f"run_distribute_train_cpu.sh in {cwd} exited {code}, expected {expect_code}; console:\n"
                    f"{text[-3000:]}{worker_logs}")
    return text


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """Run the CPU launcher once for the module; return what it left behind."""
    if not msrun_available():
        pytest.skip("mindspore.parallel.cluster.run (msrun) is not available in this MindSpore")
    cwd = tmp_path_factory.mktemp("distributed")
    start = time.perf_counter()
    text = finish(start_cpu_launcher(cwd, WORKERS, launcher_env(cwd)), cwd)
    elapsed = time.perf_counter() - start
    print(f"two-worker run: {elapsed:.1f} s")
    return {"cwd": cwd, "run": cwd / "run", "logs": cwd / "run" / "msrun_logs", "console": text, "seconds": elapsed,
            "dumps": [load_dump(cwd / f"dump_rank{r}.npz") for r in range(WORKERS)]}


@pytest.mark.slow
def test_both_ranks_ran_and_logged(two_workers):
    logs = two_workers["logs"]
    assert "command: " in two_workers["console"] and "--master_port=" in two_workers["console"]
    for rank in range(WORKERS):
        text = (logs / f"worker_{rank}.log").read_text()
        assert f"rank id: {rank}" in text, f"worker_{rank}.log does not show rank {rank} joining the cluster"
    rank0 = (logs / "worker_0.log").read_text()
    for step in range(1, STEPS + 1):
        assert f"epoch: 1 step: {step}, loss is" in rank0
    assert f"({BATCH} per step per device x {WORKERS} device(s))" in rank0
    assert "training finished" in rank0
    for rank, dump in enumerate(two_workers["dumps"]):
        assert len(dump["digests"]) == STEPS and all(len(step) == BATCH for step in dump["digests"]), rank


@pytest.mark.slow
def test_ranks_end_with_identical_weights(two_workers):
    first, second = two_workers["dumps"]
    assert first["params"].keys() == second["params"].keys() and first["params"]
    for name, value in first["params"].items():
        np.testing.assert_array_equal(value, second["params"][name], err_msg=name)


@pytest.mark.slow
def test_ranks_saw_disjoint_sequences_of_the_mapping(two_workers):
    from src.data.pipeline import global_index, load_digits, train_source

    seen = [dump["digests"] for dump in two_workers["dumps"]]
    flat = [set(d for step in rank for d in step) for rank in seen]
    assert not flat[0] & flat[1]
    assert len(flat[0]) == len(flat[1]) == STEPS * BATCH
    cfg = load_config(overrides(), config_path=CONFIG)
    source = train_source(cfg, load_digits(cfg, "train"), epoch=0, group_size=WORKERS)
    for rank in range(WORKERS):
        expected = [[digest(*source[global_index(s, rank, WORKERS, BATCH, b)]) for b in range(BATCH)]
                    for s in range(STEPS)]
        assert seen[rank] == expected, f"rank {rank} did not train on its share of the sequences"


@pytest.mark.slow
def test_ranks_validated_alike_and_only_rank0_wrote(two_workers):
    first, second = two_workers["dumps"]
    def without_time(history):
        return [{k: v for k, v in row.items() if k != "epoch_time_s"} for row in history]

    assert without_time(first["history"]) == without_time(second["history"])  # same val scores, same loss
    assert "val_mse" in first["history"][0]
    run = two_workers["run"]
    assert sorted(os.listdir(run)) == ["ckpt", "config.yaml", "history.json", "log.csv", "msrun_logs"]
    assert sorted(os.listdir(run / "ckpt")) == ["best.ckpt", f"convlstm-1_{STEPS}.ckpt", "last.ckpt"]
    assert json.loads((run / "history.json").read_text())[0]["train_loss"] == first["history"][0]["train_loss"]
    # nothing else in the directory the launcher ran in (no per-rank files of MindSpore either)
    assert sorted(os.listdir(two_workers["cwd"])) == ["console.txt", "dump_rank0.npz", "dump_rank1.npz", "run"]


@pytest.mark.slow
def test_two_workers_equal_one_process_with_the_global_batch(two_workers, tmp_path, monkeypatch):
    """Averaging the gradients of 2 x 2 sequences is the gradient of the mean loss over the 4,
    and step s of both runs uses sequences 4s..4s+3 of the same epoch source.

    TINY trains with plain SGD and no clipping, so the update is proportional to the gradient: a
    sum over ranks instead of a mean would move every weight twice as far (under Adam, or with
    clipping, it would barely change the update); the weights must have moved far more than the
    tolerance for that to show."""
    import mindspore as ms

    from src.models.network import build_network
    from src.training.trainer import Trainer

    rank_recorder.install(str(tmp_path / "single_"), monkeypatch.setattr)
    cfg = load_config(overrides(batch_size=BATCH * WORKERS, output_dir=tmp_path / "run"), config_path=CONFIG)
    assert Trainer(cfg).fit() == 0
    single = load_dump(tmp_path / "single_rank0.npz")
    ranks = two_workers["dumps"]
    assert single["digests"] == [ranks[0]["digests"][s] + ranks[1]["digests"][s] for s in range(STEPS)]
    ms.set_seed(cfg.seed)  # the initial weights, as Trainer builds them
    initial = {p.name: p.asnumpy() for p in build_network(cfg).get_parameters()}
    moved = max(np.abs(value - initial[name]).max() for name, value in single["params"].items())
    assert moved > 1e-3, moved  # a doubled update would be at least this far off
    for name, value in single["params"].items():
        np.testing.assert_allclose(ranks[0]["params"][name], value, rtol=0, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(ranks[0]["history"][0]["train_loss"], single["history"][0]["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(ranks[0]["history"][0]["val_mse"], single["history"][0]["val_mse"], rtol=1e-4)


@pytest.mark.slow
def test_two_workers_with_no_data_pixels_equal_one_process_with_the_global_batch(tmp_path, monkeypatch):
    """nodata: the no-data mask travels as a third dataset column to each rank's compiled step; the ranks' averaged
    gradients of the masked loss equal one process's on the global batch."""
    if not msrun_available():
        pytest.skip("mindspore.parallel.cluster.run (msrun) is not available in this MindSpore")
    rng = np.random.default_rng(8)
    frames = rng.random((12, 5, 1, 16, 16)).astype(np.float32)  # (N, T, C, H, W) in [0, 1]
    frames[rng.random(frames.shape) < 0.2] = np.nan
    frames[::3, :, :, :6, :8] = np.nan
    np.save(tmp_path / "gaps.npy", frames)
    changes = dict(dataset="sequences", data_path=tmp_path / "gaps.npy", nodata="nan", sampling="none",
                   loss_frames="output", val_fraction=0.2, test_fraction=0.2)
    cwd = tmp_path / "launched"
    cwd.mkdir()
    finish(start_cpu_launcher(cwd, WORKERS, launcher_env(cwd), **changes), cwd)
    ranks = [load_dump(cwd / f"dump_rank{r}.npz") for r in range(WORKERS)]
    rank_recorder.install(str(tmp_path / "single_"), monkeypatch.setattr)
    cfg = load_config(overrides(batch_size=BATCH * WORKERS, output_dir=tmp_path / "run", **changes), config_path=CONFIG)
    from src.training.trainer import Trainer

    assert Trainer(cfg).fit() == 0
    single = load_dump(tmp_path / "single_rank0.npz")
    assert single["digests"] == [ranks[0]["digests"][s] + ranks[1]["digests"][s] for s in range(STEPS)]
    for name, value in single["params"].items():
        np.testing.assert_allclose(ranks[0]["params"][name], value, rtol=0, atol=1e-5, err_msg=name)
        np.testing.assert_array_equal(ranks[1]["params"][name], ranks[0]["params"][name], err_msg=name)
    assert np.isfinite(single["history"][0]["train_loss"])
    np.testing.assert_allclose(ranks[0]["history"][0]["train_loss"], single["history"][0]["train_loss"], rtol=1e-5)


# ---------------------------------------------------------------- a non-zero rank in-process
# ---------------------------------------------------------------- two hosts on loopback
def another_host_ip(directory):
    """A stand-in for `ip` that lists no local address. msrun starts its scheduler on every host
    whose `ip addr` lists MASTER_ADDR; on loopback both "hosts" would, so the second one is given
    the view a real second host has: MASTER_ADDR is not one of its own addresses."""
    directory.mkdir()
    (directory / "ip").write_text("#!/bin/sh\necho '[]'\n")
    (directory / "ip").chmod(0o755)
    return str(directory)


@pytest.mark.slow
def test_two_hosts_on_loopback_train_like_two_workers_on_one(two_workers, tmp_path):
    """Two launcher invocations, NODE_RANK 0 and 1, one worker each, master 127.0.0.1: the same
    job as the single-host 2-worker run (same ranks, same sequences, same weights)."""
    port = subprocess.run([sys.executable, "-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); "
                           "print(s.getsockname()[1])"], capture_output=True, text=True, check=True).stdout.strip()
    hosts = [tmp_path / "host0", tmp_path / "host1"]
    procs = []
    for rank, cwd in enumerate(hosts):
        cwd.mkdir()
        env = launcher_env(cwd, NODE_NUM="2", NODE_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        if rank == 1:
            env["PATH"] = another_host_ip(tmp_path / "host1_ip") + os.pathsep + env["PATH"]
        procs.append(start_cpu_launcher(cwd, 1, env))
    consoles = [finish(proc, cwd) for proc, cwd in zip(procs, hosts)]
    assert "--node_rank=1" in consoles[1] and "--worker_num=2" in consoles[1] and "--local_worker_num=1" in consoles[1]
    assert "rank id: 1" in (hosts[1] / "run" / "msrun_logs" / "worker_1.log").read_text()
    dumps = [load_dump(hosts[0] / "dump_rank0.npz"), load_dump(hosts[1] / "dump_rank1.npz")]
    for rank, (dump, reference) in enumerate(zip(dumps, two_workers["dumps"])):
        assert dump["digests"] == reference["digests"], f"rank {rank} trained on other sequences"
        for name, value in reference["params"].items():
            np.testing.assert_array_equal(dump["params"][name], value, err_msg=f"rank {rank} {name}")
    assert sorted(os.listdir(hosts[1] / "run")) == ["msrun_logs"]  # only rank 0 (host 0) writes the run
    assert os.path.isfile(hosts[0] / "run" / "ckpt" / "last.ckpt")


def test_several_hosts_need_a_master_port_and_a_valid_node_rank(tmp_path):
    for env, message in ((dict(NODE_NUM="2"), "set MASTER_PORT"),
                         (dict(NODE_NUM="2", NODE_RANK="2", MASTER_PORT="29500"), "NODE_RANK must be"),
                         (dict(NODE_NUM="0"), "NODE_NUM must be")):
        result = run_script("cpu", ["1", CONFIG, "--output_dir", "out"], tmp_path, **env)
        assert result.returncode == 1 and message in result.stdout, (env, result.stdout)


# ---------------------------------------------------------------- a stop request on one rank
def worker_pid(launcher, rank):
    """The pid of the training process of ``rank`` among the launcher's descendants."""
    for pid in descendants(launcher.pid):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if b"train.py" in cmdline and env.get(b"RANK_ID") == str(rank).encode() and env.get(b"MS_ROLE") == b"MS_WORKER":
            return pid
    return None


@pytest.mark.slow
def test_sigterm_on_one_rank_stops_every_rank_at_the_same_step_with_one_checkpoint(tmp_path):
    """SIGTERM to rank 1 only: the ranks agree at the next loss read-back (every log_every steps)
    to stop after the same step; rank 0 saves one checkpoint there, nobody waits in an
    all-reduce, and --resume auto with the same ranks continues from it."""
    steps, every = 16, 2
    cwd = tmp_path
    proc = start_cpu_launcher(cwd, WORKERS, launcher_env(cwd), steps_per_epoch=steps, log_every=every)
    rank0_log = cwd / "run" / "msrun_logs" / "worker_0.log"
    deadline = time.time() + RUN_TIMEOUT_S
    while time.time() < deadline and not (rank0_log.is_file() and "epoch: 1 step: 2," in rank0_log.read_text()):
        time.sleep(0.2)
    pid = worker_pid(proc, 1)
    assert pid is not None, "rank 1's training process not found"
    os.kill(pid, signal.SIGTERM)
    finish(proc, cwd, expect_code=None)  # a stopped job may exit non-zero, but it must not hang
    text = rank0_log.read_text()
    match = re.search(r"stopped at epoch 1 step (\d+); saved (\S+); continue with --resume auto", text)
    assert match, text[-3000:]
    stopped = int(match.group(1))
    assert stopped % every == 0 and 2 <= stopped < steps
    from src.checkpoint import checkpoint_meta, read_checkpoint
    meta = checkpoint_meta(read_checkpoint(str(cwd / "run" / "ckpt" / "last.ckpt")))
    assert (meta["step_in_epoch"], meta["group_size"], meta["batch_size"]) == (stopped, WORKERS, BATCH)
    assert sorted(os.listdir(cwd / "run" / "ckpt")) == ["last.ckpt"]
    rank1_log = (cwd / "run" / "msrun_logs" / "worker_1.log").read_text()
    assert "Traceback" not in rank1_log and "Traceback" not in text

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(cwd / "run", resumed / "run", ignore=shutil.ignore_patterns("msrun_logs"))
    finish(start_cpu_launcher(resumed, WORKERS, launcher_env(resumed), steps_per_epoch=steps, log_every=every,
                              resume="auto"), resumed)
    log = (resumed / "run" / "msrun_logs" / "worker_0.log").read_text()
    assert f"continuing at epoch 1 step {stopped + 1}" in log and "training finished" in log


def test_resume_with_another_rank_count_or_batch_is_refused(tmp_path):
    """The sequence of a step depends on the number of ranks and the per-device batch."""
    from src.device import RunContext
    from src.training.trainer import Trainer

    cfg = load_config(overrides(output_dir=tmp_path / "run", mode="pynative"), config_path=CONFIG)
    assert Trainer(cfg).fit() == 0
    with pytest.raises(ConfigError, match=r"trained on 1 rank\(s\) with batch_size 2 per device; this run has "
                                          r"1 rank\(s\) with batch_size 4"):
        Trainer(cfg.replace(resume="auto", epochs=2, batch_size=4))
    with pytest.raises(ConfigError, match=r"this run has 2 rank\(s\)"):
        Trainer(cfg.replace(resume="auto", epochs=2), ctx=RunContext("CPU", rank=1, group_size=2))


@pytest.mark.slow
def test_non_main_rank_writes_nothing(tmp_path, monkeypatch):
    """Rank 1 of 2 (without the collectives: gradients and loss stay local) trains on its own
    sequences, validates, and leaves no file behind."""
    from src.device import RunContext
    from src.training import trainer as trainer_mod
    from src.training.trainer import Trainer

    real_build = trainer_mod.build_train_step
    monkeypatch.setattr(trainer_mod, "build_train_step",
                        lambda cfg, forward, opt, scaler=None, group_size=1: real_build(cfg, forward, opt, scaler))
    monkeypatch.setattr(Trainer, "_sum_over_ranks", lambda self, tensor: tensor)
    cfg = load_config(overrides(output_dir=tmp_path / "run"), config_path=CONFIG)
    trainer = Trainer(cfg, ctx=RunContext("CPU", rank=1, group_size=2))
    assert trainer.fit() == 0
    assert trainer.epoch == 1 and "val_mse" in trainer.history[0]
    assert not os.path.exists(tmp_path / "run")


# ---------------------------------------------------------------- how a process learns its place
def test_device_follows_the_launcher(monkeypatch):
    from src.device import _launched_by_cluster, _launcher_device_id

    for key in ("MS_ROLE", "MS_WORKER_NUM", "RANK_TABLE_FILE", "OMPI_COMM_WORLD_SIZE", "DEVICE_ID"):
        monkeypatch.delenv(key, raising=False)
    assert not _launched_by_cluster() and _launcher_device_id() is None
    monkeypatch.setenv("RANK_TABLE_FILE", "/x/hccl.json")
    monkeypatch.setenv("DEVICE_ID", "3")
    assert _launched_by_cluster() and _launcher_device_id() == 3  # rank table: this process's device
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")
    assert _launcher_device_id() is None  # msrun assigns devices itself
    monkeypatch.delenv("MS_ROLE")
    monkeypatch.delenv("RANK_TABLE_FILE")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert _launched_by_cluster()  # mpirun


# ---------------------------------------------------------------- launchers without devices
LAUNCHERS = {"cpu": "run_distribute_train_cpu.sh", "gpu": "run_distribute_train_gpu.sh",
             "ascend": "run_distribute_train.sh"}


def rank_table(tmp_path, devices=2, servers=1):
    """An HCCL rank table of ``servers`` servers 10.0.0.1, 10.0.0.2, ... with ``devices`` each."""
    path = tmp_path / "hccl.json"
    server_list = [{"server_id": f"10.0.0.{k + 1}",
                    "device": [{"device_id": str(i), "device_ip": f"192.168.{k}.{i}", "rank_id": str(k * devices + i)}
                               for i in range(devices)]} for k in range(servers)]
    path.write_text(json.dumps({"version": "1.0", "server_count": str(servers), "server_list": server_list,
                                "status": "completed"}))
    return str(path)


def bad_arguments(tmp_path):
    table = rank_table(tmp_path)
    return [
        ("cpu", []), ("cpu", ["2"]), ("cpu", ["two", CONFIG]), ("cpu", ["0", CONFIG]), ("cpu", ["2", "missing.yaml"]),
        ("cpu", ["2", CONFIG, "--device_target", "GPU"]), ("cpu", ["2", CONFIG, "--distribute=false"]),
        ("gpu", []), ("gpu", ["8"]), ("gpu", ["-1", CONFIG]), ("gpu", ["8", "missing.yaml"]),
        ("gpu", ["8", CONFIG, "--device-target", "CPU"]),
        ("ascend", []), ("ascend", [table, CONFIG]), ("ascend", ["missing.json", CONFIG, "2"]),
        ("ascend", [table, "missing.yaml", "2"]), ("ascend", [table, CONFIG, "x"]), ("ascend", [table, CONFIG, "0"]),
        ("ascend", [table, CONFIG, "2", "--distribute", "true"]),
    ]


def run_script(name, args, cwd, **env):
    return subprocess.run(["bash", os.path.join(SCRIPTS, LAUNCHERS[name]), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHON": sys.executable, **env})


def test_launchers_print_usage_and_exit_1_on_wrong_arguments(tmp_path):
    for name, args in bad_arguments(tmp_path):
        result = run_script(name, args, tmp_path)
        assert result.returncode == 1, (name, args, result.stdout, result.stderr)
        assert "Usage: bash scripts/" + LAUNCHERS[name] in result.stdout, (name, args, result.stdout)
    assert not os.path.exists(tmp_path / "output")


def test_launchers_reject_bad_config_values_before_starting(tmp_path):
    for name, args in (("cpu", ["2", CONFIG, "--batch_size", "zero"]), ("gpu", ["2", CONFIG, "--no_such_key", "1"]),
                       ("ascend", [rank_table(tmp_path), CONFIG, "2", "--epochs", "0"])):
        result = run_script(name, args, tmp_path)
        assert result.returncode != 0 and "config key" in result.stdout, (name, result.stdout, result.stderr)
    assert sorted(os.listdir(tmp_path)) == ["hccl.json"]


def write_recorder(path, real_python, target):
    """A stand-in executable that records its command line, directory and rank variables as json
    when asked to run ``target``, and runs the real interpreter otherwise."""
    path.write_text(f"""#!{real_python}
import json, os, sys
if any(arg.endswith({target!r}) for arg in sys.argv[1:2]) or {target!r} == "*":
    keys = ("DEVICE_ID", "RANK_ID", "RANK_SIZE", "RANK_TABLE_FILE")
    record = dict(argv=sys.argv[1:], cwd=os.getcwd(), env={{k: os.environ.get(k) for k in keys}})
    if {target!r} == "*":
        import subprocess
        record["worker_python"] = subprocess.run(["python", "-c", "import sys; print(sys.executable)"],
                                                 capture_output=True, text=True).stdout.strip()
    name = "record_%s.json" % os.environ.get("RANK_ID", "msrun")
    with open(os.path.join(os.environ["RECORD_DIR"], name), "w") as f:
        json.dump(record, f)
    sys.exit(0)
os.execv({real_python!r}, [{real_python!r}] + sys.argv[1:])
""")
    path.chmod(0o755)
    return str(path)


def wait_for(paths, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline and not all(os.path.isfile(p) for p in paths):
        time.sleep(0.2)
    return [json.loads(open(p, encoding="utf-8").read()) for p in paths]


def test_ascend_launcher_starts_one_process_per_rank(tmp_path):
    """Rank-table launch with a stand-in interpreter: per-rank DEVICE_ID/RANK_ID, the rank table,
    one working directory and log per rank, paths made absolute against the caller's directory."""
    fake = write_recorder(tmp_path / "python", sys.executable, "train.py")
    rank_table(tmp_path)
    (tmp_path / "caller").mkdir()
    result = run_script("ascend", ["../hccl.json", CONFIG, "2", "--output_dir", "out", "--dataset", "mnist",
                                   "--data_path=data"],
                        tmp_path / "caller", PYTHON=fake, RECORD_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "caller" / "out"
    records = wait_for([tmp_path / "record_0.json", tmp_path / "record_1.json"])
    for rank, record in enumerate(records):
        assert record["env"] == {"DEVICE_ID": str(rank), "RANK_ID": str(rank), "RANK_SIZE": "2",
                                 "RANK_TABLE_FILE": str(tmp_path / "hccl.json")}
        assert record["cwd"] == str(out / f"rank_{rank}")
        argv = record["argv"]
        assert argv[argv.index("--device_target") + 1] == "Ascend" and argv[argv.index("--distribute") + 1] == "true"
        assert argv[argv.index("--output_dir") + 1] == str(out) and argv.count("--output_dir") == 1
        assert argv[argv.index("--data_path") + 1] == str(tmp_path / "caller" / "data")
        assert "--data_path=data" not in argv and "--resume" not in argv
        assert os.path.isfile(out / f"rank_{rank}" / "train.log") and os.path.isfile(out / f"rank_{rank}" / "train.pid")
        assert f"{out}/rank_{rank}/train.log" in result.stdout


def test_ascend_launcher_starts_the_local_share_of_a_multi_server_table(tmp_path):
    """Two servers of two devices: the host named by SERVER_ID starts ranks 2 and 3 on its devices 0 and 1."""
    fake = write_recorder(tmp_path / "python", sys.executable, "train.py")
    table = rank_table(tmp_path, devices=2, servers=2)
    result = run_script("ascend", [table, CONFIG, "4", "--output_dir", "out"], tmp_path, PYTHON=fake,
                        RECORD_DIR=str(tmp_path), SERVER_ID="10.0.0.2")
    assert result.returncode == 0, result.stdout + result.stderr
    records = wait_for([tmp_path / "record_2.json", tmp_path / "record_3.json"])
    assert [(r["env"]["DEVICE_ID"], r["env"]["RANK_ID"], r["env"]["RANK_SIZE"]) for r in records] == \
        [("0", "2", "4"), ("1", "3", "4")]
    assert not (tmp_path / "record_0.json").exists() and "2 of 4 Ascend devices" in result.stdout
    for env, message in ((dict(SERVER_ID="10.9.9.9"), "is not a server_id"), ({}, "set SERVER_ID")):
        result = run_script("ascend", [table, CONFIG, "4"], tmp_path, PYTHON=fake, RECORD_DIR=str(tmp_path), **env)
        assert result.returncode == 1 and message in result.stdout, (env, result.stdout)


def test_ascend_launcher_checks_rank_size_against_the_table(tmp_path):
    result = run_script("ascend", [rank_table(tmp_path, devices=8), CONFIG, "2"], tmp_path)
    assert result.returncode == 1 and "lists 8 devices" in result.stdout


def test_gpu_launcher_runs_msrun_with_this_python(tmp_path):
    fake = write_recorder(tmp_path / "msrun", sys.executable, "*")
    result = run_script("gpu", ["4", CONFIG, "--output_dir", "out", "--epochs", "3"], tmp_path, MSRUN=fake,
                        RECORD_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    (record,) = wait_for([tmp_path / "record_msrun.json"])
    argv = record["argv"]
    out = tmp_path / "out"
    for option in ("--worker_num=4", "--local_worker_num=4", f"--log_dir={out}/msrun_logs", "--join=True"):
        assert option in argv
    assert any(a.startswith("--master_port=") and int(a.split("=")[1]) > 1023 for a in argv)
    script = argv.index(os.path.join(REPO, "train.py"))
    assert argv[script + 1:] == ["--config_path", CONFIG, "--device_target", "GPU", "--distribute", "true",
                                 "--output_dir", "out", "--epochs", "3"]
    assert os.path.realpath(record["worker_python"]) == os.path.realpath(sys.executable)
    assert os.path.isfile(out / "train.pid") and "msrun_logs/worker_<rank>.log" in result.stdout

