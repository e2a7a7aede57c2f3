"""Evaluation (eval.py, src/evaluation.py, scripts/run_eval.sh) on tiny files and networks."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from eval import main as eval_main
from src.cli import run_cli
from src.config import load_config
from src.eval_report import eval_dir
from src.evaluation import evaluate
from tests.data_files import write_test_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = os.path.join(REPO, "configs", "cpu_small.yaml")
# a paper network small enough to compile and run in a few seconds on 64x64 frames
TINY_ARCH = ["--hidden_channels", "4", "--kernel_size", "3", "--patch_size", "4", "--image_size", "64"]


def _sequences(n, seed=0):
    """(N, 20, 64, 64) uint8 with independent random frames, so every frame pairing scores differently."""
    return (np.random.default_rng(seed).random((n, 20, 64, 64)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def test_npy(tmp_path_factory):
    """(sequences (N, T, H, W) uint8, path of the file in the published (T, N, H, W) layout)."""
    seqs = _sequences(3)
    path = str(tmp_path_factory.mktemp("data") / "mnist_test_seq.npy")
    write_test_file(path, seqs)
    return seqs, path


def _copy_last_numpy(seqs, last_input, targets):
    """Metrics of 'repeat frame last_input' against frames ``targets``, straight from the README's metric definitions."""
    x = seqs.astype(np.float64) / 255.0  # (N, T, H, W)
    pred = x[:, last_input:last_input + 1]  # (N, 1, H, W)
    true = x[:, targets]  # (N, T_out, H, W)
    diff = pred - true
    mse = np.square(diff).sum(axis=(2, 3))  # (N, T_out)
    ssim = np.array([[structural_similarity(pred[i, 0], true[i, t], data_range=1.0) for t in range(true.shape[1])]
                     for i in range(len(x))])
    # OpenSTL's way: float32 frames, scikit-image's old implicit float range of 2
    ssim_openstl = np.array([[structural_similarity(pred[i, 0].astype(np.float32), true[i, t].astype(np.float32),
                                                    data_range=2.0) for t in range(true.shape[1])]
                             for i in range(len(x))])
    return {"mse": mse.mean(), "mae": np.abs(diff).sum(axis=(2, 3)).mean(), "ssim": ssim.mean(),
            "ssim_openstl": ssim_openstl.mean(),
            "psnr": (-10 * np.log10(mse / 4096)).mean(), "per_frame_mse": mse.mean(axis=0)}


def _run(args, cwd=REPO, script=None):
    cmd = ["bash", script] + args if script else [sys.executable, os.path.join(REPO, "eval.py")] + args
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _one_error_line(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# ---------------------------------------------------------------- metrics and orientation

def test_copy_last_on_test_file_scores_frames_10_to_19_against_frame_9(test_npy, tmp_path, capsys):
    seqs, path = test_npy
    code = eval_main(["--config_path", SMALL, "--baseline", "copy_last", "--dataset", "mnist", "--data_path", path,
                      "--eval_batch_size", "2", "--output_dir", str(tmp_path)])
    assert code == 0
    report = json.load(open(tmp_path / "metrics.json"))
    want = _copy_last_numpy(seqs, 9, list(range(10, 20)))
    swapped = _copy_last_numpy(seqs, 19, list(range(0, 10)))  # the swapped task of the old port
    assert abs(want["mse"] - swapped["mse"]) > 1.0  # the fixture can tell the two tasks apart
    assert report["num_sequences"] == 3 and report["first_frame"] == 11
    for k in ("mse", "mae", "ssim", "ssim_openstl", "psnr"):
        # the file reader scales in float32, the reference in float64
        assert report[k] == pytest.approx(want[k], rel=1e-6), k
    np.testing.assert_allclose(report["per_frame"]["mse"], want["per_frame_mse"], rtol=1e-6)
    assert report["baseline"] == "copy_last" and report["checkpoint"] is None
    assert report["data_path"] == os.path.abspath(path)
    out = capsys.readouterr().out
    assert "predicted frames 11..20" in out and f"result: mse={want['mse']:.3f}" in out


def test_synthetic_dataset_scores_the_held_out_test_seed_set(tmp_path):
    from src.baselines import predict_baseline
    from src.data.pipeline import generated_test_source, iterate_batches, load_digits
    from tests.test_metrics import compute_metrics

    assert eval_main(["--config_path", SMALL, "--baseline", "copy_last", "--dataset", "synthetic",
                      "--num_sequences", "3", "--output_dir", str(tmp_path)]) == 0
    report = json.load(open(tmp_path / "metrics.json"))
    cfg = load_config([], config_path=SMALL, val_sequences=3)
    _, inputs, targets = next(iterate_batches(generated_test_source(cfg, load_digits(cfg, "val"), 3), 3))
    want = compute_metrics(predict_baseline("copy_last", inputs, 10), targets)
    assert report["num_sequences"] == 3 and report["dataset"] == "synthetic" and report["data_path"] is None
    assert report["mse"] == pytest.approx(want["mse"], rel=1e-12) and report["mse"] > 0


def test_evaluate_streams_batches_like_one_shot_metrics():
    from tests.test_metrics import compute_metrics

    rng = np.random.default_rng(1)
    data = rng.random((5, 4, 1, 8, 8)).astype(np.float32)  # (N, T, 1, H, W)
    source = [(seq[:2], seq[2:]) for seq in data]
    cfg = load_config([], config_path=SMALL, eval_batch_size=2)
    calls = []

    def predict(inputs):  # a deterministic 'model': half of the last input
        return 0.5 * inputs[:, -1:].repeat(2, axis=1)

    result = evaluate(cfg, predict, source, on_batch=lambda start, x, y, p: calls.append((start, len(x))),
                      progress=False)
    want = compute_metrics(0.5 * data[:, 1:2].repeat(2, axis=1), data[:, 2:])
    assert calls == [(0, 2), (2, 2), (4, 1)]
    assert result["num_sequences"] == 5
    for k in ("mse", "mae", "ssim", "psnr"):
        assert result[k] == pytest.approx(want[k], rel=1e-12)
    assert set(result["timing"]) >= {"total_s", "predict_s", "first_batch_s"}


@pytest.fixture(scope="module")
def device():
    """Set the device before any kernel runs in this process (MindSpore refuses it later)."""
    from src.device import init_device

    init_device(load_config([], config_path=SMALL))


# ---------------------------------------------------------------- where results go

def test_eval_into_a_run_directory_goes_to_a_subdirectory(test_npy, tmp_path):
    _, path = test_npy
    run = tmp_path / "run"
    (run / "ckpt").mkdir(parents=True)
    (run / "config.yaml").write_text("arch: paper\n")
    (run / "ckpt" / "last.ckpt").write_bytes(b"weights")
    before = sorted(os.listdir(run))
    cfg = load_config(["--output_dir", str(run)], config_path=SMALL)
    assert eval_dir(cfg) == str(run / "eval")
    assert eval_dir(cfg.replace(baseline="zeros")) == str(run / "eval_zeros")
    assert eval_dir(cfg.replace(output_dir=str(tmp_path / "fresh"))) == str(tmp_path / "fresh")

    assert eval_main(["--config_path", SMALL, "--baseline", "zeros", "--dataset", "mnist", "--data_path", path,
                      "--output_dir", str(run), "--save_vis", "1"]) == 0
    assert sorted(os.listdir(run)) == sorted(before + ["eval_zeros"])
    assert (run / "ckpt" / "last.ckpt").read_bytes() == b"weights"
    assert (run / "config.yaml").read_text() == "arch: paper\n"
    assert sorted(os.listdir(run / "eval_zeros")) == ["metrics.json", "metrics_per_frame.png", "vis"]


# ---------------------------------------------------------------- bad input: one line, non-zero exit

def _cli_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(eval_main, argv)
    assert exit_info.value.code != 0
    return _one_error_line(capsys.readouterr().err)


def test_missing_test_file_names_download_sh(tmp_path, capsys):
    line = _cli_error(["--config_path", SMALL, "--baseline", "copy_last", "--dataset", "mnist",
                       "--data_path", str(tmp_path), "--output_dir", str(tmp_path / "out")], capsys)
    assert "mnist_test_seq.npy" in line and "download.sh" in line
    assert not (tmp_path / "out").exists()


def test_more_sequences_than_the_file_holds(test_npy, tmp_path, capsys):
    _, path = test_npy
    line = _cli_error(["--config_path", SMALL, "--baseline", "copy_last", "--dataset", "mnist", "--data_path", path,
                       "--num_sequences", "4", "--output_dir", str(tmp_path)], capsys)
    assert "num_sequences 4" in line and "3 sequences" in line


def test_bad_npy_is_one_line(tmp_path, capsys):
    bad = tmp_path / "mnist_test_seq.npy"
    np.save(str(bad), np.zeros((20, 2, 64, 64), np.float32))
    line = _cli_error(["--config_path", SMALL, "--baseline", "copy_last", "--dataset", "mnist",
                       "--data_path", str(bad), "--output_dir", str(tmp_path / "out")], capsys)
    assert "uint8" in line


def test_missing_checkpoint_is_one_line(device, test_npy, tmp_path, capsys):
    _, path = test_npy
    line = _cli_error(["--config_path", SMALL, "--dataset", "mnist", "--data_path", path,
                       "--ckpt_file", str(tmp_path / "nope.ckpt"), "--output_dir", str(tmp_path)], capsys)
    assert "nope.ckpt" in line and "not found" in line


# ---------------------------------------------------------------- a real checkpoint end to end

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A checkpoint of an untrained tiny paper network, saved the way train.py saves it."""
    from src.models.network import build_network
    from src.checkpoint import save_checkpoint

    cfg = load_config(TINY_ARCH, config_path=SMALL)
    path = str(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")
    save_checkpoint(path, build_network(cfg), cfg, {"epoch": 1, "step_in_epoch": 0})
    return path


@pytest.mark.slow
def test_eval_py_on_a_checkpoint_writes_metrics_and_pictures(test_npy, tiny_checkpoint, tmp_path):
    _, path = test_npy
    ckpt_bytes = open(tiny_checkpoint, "rb").read()
    out = tmp_path / "out"
    proc = _run(["--config_path", SMALL] + TINY_ARCH + [
        "--ckpt_file", tiny_checkpoint, "--dataset", "mnist", "--data_path", path, "--num_sequences", "3",
        "--eval_batch_size", "2", "--save_vis", "1", "--output_dir", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MSE/MAE" in proc.stdout and "result: mse=" in proc.stdout and "model=" in proc.stdout
    report = json.load(open(out / "metrics.json"))
    assert {"mse", "mae", "ssim", "psnr", "per_frame", "num_sequences", "checkpoint", "baseline", "dataset",
            "data_path", "timing", "config", "baselines"} <= set(report)
    assert set(report["baselines"]) == {"zeros", "copy_last"}
    assert report["num_sequences"] == 3 and len(report["per_frame"]["ssim"]) == 10
    assert report["checkpoint"] == os.path.abspath(tiny_checkpoint) and report["baseline"] is None
    assert report["config"]["hidden_channels"] == [4] and report["dataset"] == "mnist"
    assert np.isfinite(report["mse"]) and report["mse"] > 0
    for name, fmt in (("seq_0000.png", "PNG"), ("seq_0000.gif", "GIF")):
        picture = out / "vis" / name
        assert picture.stat().st_size > 0 and str(picture) in proc.stdout
        with Image.open(picture) as im:
            assert im.format == fmt
    assert sorted(os.listdir(out / "vis")) == ["seq_0000.gif", "seq_0000.png"]  # only the first sequence
    assert (out / "metrics_per_frame.png").stat().st_size > 0
    assert open(tiny_checkpoint, "rb").read() == ckpt_bytes


@pytest.mark.slow
def test_checkpoint_of_another_architecture_is_refused(test_npy, tiny_checkpoint, tmp_path):
    _, path = test_npy
    proc = _run(["--config_path", SMALL, "--hidden_channels", "8", "--kernel_size", "3", "--patch_size", "4",
                 "--ckpt_file", tiny_checkpoint, "--dataset", "mnist", "--data_path", path,
                 "--output_dir", str(tmp_path / "out")])
    assert proc.returncode != 0
    line = _one_error_line(proc.stderr)
    assert "hidden_channels" in line and tiny_checkpoint in line
    assert not (tmp_path / "out" / "metrics.json").exists()


# ---------------------------------------------------------------- scripts/run_eval.sh

SCRIPT = os.path.join(REPO, "scripts", "run_eval.sh")


@pytest.mark.parametrize("args", [
    [],
    ["configs/cpu_small.yaml", "none", "."],
    ["configs/cpu_small.yaml", "none", ".", "TPU", "0"],
    ["configs/cpu_small.yaml", "none", ".", "CPU", "x"],
    ["configs/missing.yaml", "none", ".", "CPU", "0"],
    ["configs/cpu_small.yaml", "missing.ckpt", ".", "CPU", "0"],
])
def test_run_eval_sh_wrong_arguments_print_usage(args):
    proc = _run(args, script=SCRIPT)
    assert proc.returncode == 1
    assert "Usage: bash scripts/run_eval.sh" in proc.stdout


def test_run_eval_sh_runs_a_baseline_and_logs(test_npy, tmp_path):
    _, path = test_npy
    # relative paths are resolved against the caller's directory
    rel_data = os.path.relpath(path, tmp_path)
    proc = _run([SMALL, "none", rel_data, "CPU", "0", "--baseline", "copy_last", "--output_dir", "res"],
                cwd=str(tmp_path), script=SCRIPT)
    assert proc.returncode == 0, proc.stdout[-2000:]
    log = (tmp_path / "res" / "eval.log").read_text()
    assert "result: mse=" in log and "result: mse=" in proc.stdout
    assert json.load(open(tmp_path / "res" / "metrics.json"))["dataset"] == "mnist"


def test_run_eval_sh_passes_errors_through(tmp_path):
    proc = _run([SMALL, "none", str(tmp_path), "CPU", "0", "--baseline", "copy_last", "--output_dir",
                 str(tmp_path / "res")], script=SCRIPT)
    assert proc.returncode != 0
    assert "download.sh" in proc.stdout


def _scores(mse, mae, ssim, psnr):
    return {"mse": mse, "mae": mae, "ssim": ssim, "psnr": psnr}


def test_verdict_names_what_the_model_beats_and_what_not_yet():
    from src.eval_report import baseline_table, blank_reason, verdict

    model = _scores(100.0, 200.0, 0.70, 16.0)
    refs = {"zeros": _scores(137.0, 174.0, 0.78, 14.9), "copy_last": _scores(228.0, 295.0, 0.66, 12.7)}
    assert verdict(model, refs) == ("the model beats predict-zeros on MSE/PSNR; repeat-last-frame on MSE/MAE/SSIM/PSNR;"
                                    " it does not yet beat predict-zeros on MAE/SSIM")
    table = baseline_table(model, refs).splitlines()
    assert [line.split()[0] for line in table[1:]] == ["model", "predict-zeros", "repeat-last-frame"]
    assert table[1].split()[1:] == ["100.00", "200.00", "0.7000", "16.00"]
    assert blank_reason(model, refs) is None  # beats black frames on MSE, SSIM not yet: the expected early state
    assert "MSE" in blank_reason(_scores(137.0, 174.0, 0.78, 14.9), refs)  # no better than black frames
    assert "SSIM is under half" in blank_reason(_scores(120.0, 300.0, 0.05, 15.0), refs)  # a grey haze


def test_comparison_warns_only_for_a_blank_model(capsys):
    from src.eval_report import print_baseline_comparison

    refs = {"zeros": _scores(137.0, 174.0, 0.78, 14.9), "copy_last": _scores(228.0, 295.0, 0.66, 12.7)}
    print_baseline_comparison(_scores(100.0, 200.0, 0.70, 16.0), refs)
    assert "warning" not in capsys.readouterr().out
    print_baseline_comparison(_scores(140.0, 170.0, 0.79, 14.8), refs)
    out = capsys.readouterr().out
    assert "warning: it does not beat predict-zeros on MSE (140.000 vs 137.000)" in out


def test_a_data_path_that_would_be_ignored_is_refused_and_the_summary_names_the_data(tmp_path, capsys):
    from src.errors import ConfigError
    from eval import main

    with pytest.raises(ConfigError, match=r"'data_path' .* is not used with dataset synthetic .* --dataset mnist"):
        main(["--config_path", SMALL, "--baseline", "zeros", "--data_path", str(tmp_path / "mnist_test_seq.npy")])
    assert main(["--config_path", SMALL, "--baseline", "zeros", "--num_sequences", "2", "--image_size", "32",
                 "--output_dir", str(tmp_path / "out")]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("result: ") and "data=generated test set: 2 sequences" in last and "test_seed" in last


# ---------------------------------------------------------------- own sequences: the split of record

OWN_T_IN = OWN_T_OUT = 3


def _own_frames(n, seed):
    """(N, 6, 1, 8, 8) uint8 of independent random values."""
    return np.random.default_rng(seed).integers(0, 256, (n, OWN_T_IN + OWN_T_OUT, 1, 8, 8), dtype=np.uint8)


def _own_checkpoint(directory, data, meta_of):
    """An untrained one-layer paper network for the 8x8 sequences of ``data``, saved as train.py saves it with
    the metadata ``meta_of(TrainingData.record)``; returns (checkpoint, the record)."""
    from src.checkpoint import save_checkpoint
    from src.data.pipeline import TrainingData
    from src.models.network import build_network

    cfg = load_config(["--dataset", "sequences", "--data_path", str(data), "--input_frames", str(OWN_T_IN),
                       "--output_frames", str(OWN_T_OUT), "--mode", "pynative"] + TINY_ARCH, config_path=SMALL)
    training = TrainingData(cfg)  # completes the frame shape from the data, as train.py does
    path = str(directory / "own.ckpt")
    save_checkpoint(path, build_network(training.cfg), training.cfg, meta_of(training.record))
    return path, json.loads(json.dumps(training.record))


def _copy_last_mse(frames, sequences):
    """MSE of repeating the last observed frame on ``sequences`` of (N, T, C, H, W) uint8 ``frames``."""
    x = frames[sequences].astype(np.float64) / 255.0  # (n, T, C, H, W)
    err = x[:, OWN_T_IN:] - x[:, OWN_T_IN - 1:OWN_T_IN]
    return np.square(err).sum(axis=(2, 3, 4)).mean()


@pytest.mark.slow
def test_eval_scores_the_split_of_record_and_refuses_a_grown_file(device, tmp_path, capsys):
    """The user's case: 20 sequences trained on, 20 appended: refused in one line, nothing written; --eval_split
    all scores it saying it is not held-out; the original file again gives the same scores."""
    frames = _own_frames(20, seed=0)
    data = tmp_path / "a.npy"
    np.save(data, frames)
    ckpt, record = _own_checkpoint(tmp_path, data, lambda record: {"epoch": 1, "data": record})
    test = record["split"]["test"]
    out = tmp_path / "eval"
    argv = ["--ckpt_file", ckpt]
    assert eval_main(argv + ["--output_dir", str(out)]) == 0
    first = json.load(open(out / "metrics.json"))
    assert first["num_sequences"] == len(test) and "not held-out" not in first["data"]
    assert first["baselines"]["copy_last"]["mse"] == pytest.approx(_copy_last_mse(frames, test), rel=1e-6)
    assert "note:" not in capsys.readouterr().out
    written = (out / "metrics.json").read_bytes()

    np.save(data, np.concatenate([frames, _own_frames(20, seed=1)]))
    line = _cli_error(argv + ["--output_dir", str(out)], capsys)
    assert line.startswith(f"error: data file {data} has 40 sequences; {ckpt} was trained on 20 (20 appended")
    assert f"split of record: test = sequences {', '.join(map(str, test))})" in line and "--eval_split all" in line
    assert (out / "metrics.json").read_bytes() == written  # the earlier result is untouched

    assert eval_main(argv + ["--eval_split", "all", "--output_dir", str(tmp_path / "all")]) == 0
    stdout = capsys.readouterr().out
    every = json.load(open(tmp_path / "all" / "metrics.json"))
    assert every["num_sequences"] == 40 and "not held-out: 16 of its 40 sequences were trained on" in every["data"]
    assert f"of every window of {data} (not held-out: 16 of its 40" in stdout  # the "evaluating ..." line
    assert "not held-out" in stdout.strip().splitlines()[-1]  # and the summary line

    np.save(data, frames)
    assert eval_main(argv + ["--output_dir", str(tmp_path / "again")]) == 0
    again = json.load(open(tmp_path / "again" / "metrics.json"))
    for key in ("mse", "mae", "ssim", "psnr", "per_frame", "baselines", "data"):
        assert again[key] == first[key], key


@pytest.mark.slow
def test_a_checkpoint_without_a_data_record_still_evaluates_with_one_note(device, tmp_path, capsys):
    data = tmp_path / "a.npy"
    np.save(data, _own_frames(20, seed=2))
    ckpt, record = _own_checkpoint(tmp_path, data, lambda record: {"epoch": 1})  # as before records existed
    assert eval_main(["--ckpt_file", ckpt, "--output_dir", str(tmp_path / "out")]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {ckpt} records no split of its data (made before models recorded it): {data} is not "
                     "checked against the data it was trained on"]
    assert json.load(open(tmp_path / "out" / "metrics.json"))["num_sequences"] == len(record["split"]["test"])


def test_batch_extras_score_the_fss_of_model_and_baselines_in_the_data_units_on_the_same_truth():
    from src.evaluation import MAIN, BatchExtras
    from src.metrics import FractionsSkillScore

    rng = np.random.default_rng(11)
    inputs = rng.random((3, 2, 1, 12, 10))  # (B, T_in, C, H, W) in [0, 1]
    targets = rng.random((3, 4, 1, 12, 10))
    pred = targets + rng.normal(0.0, 0.2, targets.shape)  # outside [0, 1] too: clipped before scoring
    to_dbz = lambda frames: frames * 70.0 - 10.0  # noqa: E731
    hooks = BatchExtras([20.0, 35.0], 4, references=("copy_last",), to_units=to_dbz, fss_scales=[3, 1])
    hooks(0, inputs[:2], targets[:2], pred[:2])
    hooks(2, inputs[2:], targets[2:], pred[2:])
    results = hooks.skill_results()
    want = FractionsSkillScore([20.0, 35.0], [1, 3]).update(to_dbz(np.clip(pred, 0, 1)), to_dbz(targets)).result()
    assert results[MAIN]["fss"] == want
    persistence = np.repeat(inputs[:, -1:], 4, axis=1)  # (B, T_out, C, H, W)
    assert results["copy_last"]["fss"] == FractionsSkillScore([20.0, 35.0], [1, 3]).update(
        to_dbz(persistence), to_dbz(targets)).result()
    off = BatchExtras([20.0], 4, fss_scales=[])  # fss_scales: [] turns the FSS off
    off(0, inputs, targets, pred)
    assert "fss" not in off.skill_results()[MAIN] and "pod" in off.skill_results()[MAIN]["by_threshold"][0]["pooled"]
