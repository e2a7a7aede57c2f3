"""The user's whole chain, as a user runs it, checked on numbers from stage to stage:

2-rank CPU training (scripts/run_distribute_train_cpu.sh, msrun, graph mode, a training
override the yaml does not have) -> eval.py --ckpt_file (no repeated flags) -> run_eval.sh with
the training yaml -> export.py MINDIR and ONNX -> predict.py from each -> preprocess.py -> the
310 stand-in (predict.py --bin_dir) -> postprocess.py.

Every stage scores the same 4 sequences of one generated mnist_test_seq.npy; its metrics must
equal eval.py's. Tolerances: the checkpoint, the MINDIR and the ONNX model compute the same
float32 network, so predictions agree to 1e-5 per pixel and the metrics to 1e-4 relative
(MSE/MAE are sums over 4096 pixels of such differences).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.exported_models import run_script, write_random_test_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "cpu_small.yaml")
NUM_SEQUENCES = 4
# narrow and short; hidden_channels [4] and kernel_size differ from cpu_small.yaml on purpose
TRAINING = ["--hidden_channels", "[4]", "--kernel_size", "5", "--epochs", "1", "--steps_per_epoch", "2",
            "--batch_size", "2", "--val_sequences", "2", "--eval_batch_size", "2", "--log_every", "1"]
METRICS = ("mse", "mae", "ssim", "psnr")


def run(cmd, cwd, timeout=300):
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=REPO, CLUSTER_TIME_OUT="60",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n" \
                                 f"{proc.stderr[-3000:]}"
    return proc


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def assert_same_metrics(found, expected, stage):
    for key in METRICS:
        np.testing.assert_allclose(found[key], expected[key], rtol=1e-4, atol=1e-6, err_msg=f"{stage}: {key}")


def metrics_of(predictions, sequences):
    """The metrics module on predictions (N, T_out, H, W) in [0, 1] against uint8 sequences (N, 20, H, W)."""
    from src.metrics import StreamingMetrics

    targets = sequences[:, 10:, None].astype(np.float32) / 255.0  # (N, T_out, 1, H, W)
    return StreamingMetrics().update(predictions[:, :, None], targets).result()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    work = tmp_path_factory.mktemp("journey")
    sequences = write_random_test_file(work / "mnist_test_seq.npy", NUM_SEQUENCES)  # (N, 20, 64, 64) uint8
    run(["bash", os.path.join(REPO, "scripts", "run_distribute_train_cpu.sh"), "2", CONFIG, *TRAINING,
         "--output_dir", "run"], work, timeout=240)
    return {"work": work, "ckpt": str(work / "run" / "ckpt" / "last.ckpt"), "data": str(work / "mnist_test_seq.npy"),
            "sequences": sequences}


@pytest.mark.slow
def test_distributed_checkpoint_through_eval_export_predict_and_310_stand_in(chain):
    from src.checkpoint import read_checkpoint_config

    work, ckpt, data = chain["work"], chain["ckpt"], chain["data"]
    stored = read_checkpoint_config(ckpt)
    assert stored.distribute and stored.hidden_channels == [4]  # the checkpoint of a 2-rank run

    # eval.py with only the checkpoint and the data; results go to the run directory's eval/
    proc = run([sys.executable, os.path.join(REPO, "eval.py"), "--ckpt_file", ckpt, "--data_path", data,
                "--dataset", "mnist"], work)
    evaluated = read_json(work / "run" / "eval" / "metrics.json")
    assert evaluated["num_sequences"] == NUM_SEQUENCES, proc.stdout

    # run_eval.sh with the training yaml (32-32 layers, 3x3) and none of the training overrides
    run(["bash", os.path.join(REPO, "scripts", "run_eval.sh"), CONFIG, ckpt, data, "CPU", "0",
         "--output_dir", str(work / "run_eval")], work)
    assert_same_metrics(read_json(work / "run_eval" / "metrics.json"), evaluated, "run_eval.sh")

    for file_format, option in (("MINDIR", "--mindir_file"), ("ONNX", "--onnx_file")):
        name = str(work / "model" / "convlstm")
        run([sys.executable, os.path.join(REPO, "export.py"), "--ckpt_file", ckpt, "--file_name", name,
             "--file_format", file_format, "--check", "true"], work)
        model = name + (".onnx" if file_format == "ONNX" else ".mindir")
        out = work / f"predict_{file_format}"
        run([sys.executable, os.path.join(REPO, "predict.py"), option, model, "--data_path", data,
             "--output_dir", str(out)], work)
        predictions = np.load(out / "predictions.npy")  # (N, T_out, 64, 64)
        assert predictions.shape == (NUM_SEQUENCES, 10, 64, 64)
        assert_same_metrics(metrics_of(predictions, chain["sequences"]), evaluated, f"predict.py {option}")

    # preprocess -> the MINDIR on CPU writing <name>_0.bin like the 310 app -> postprocess
    mindir = str(work / "model" / "convlstm.mindir")
    pre, result = work / "preprocess_Result", work / "result_Files"
    run([sys.executable, os.path.join(REPO, "preprocess.py"), "--data_path", data, "--output_dir", str(pre),
         "--mindir_file", mindir], work)
    run([sys.executable, os.path.join(REPO, "predict.py"), "--mindir_file", mindir, "--bin_dir", str(pre / "input"),
         "--result_dir", str(result)], work)
    run([sys.executable, os.path.join(REPO, "postprocess.py"), "--result_path", str(result), "--preprocess_path",
         str(pre), "--output_dir", str(work)], work)
    assert_same_metrics(read_json(work / "metrics_310.json"), evaluated, "postprocess.py")


@pytest.mark.slow
def test_a_contradicting_network_key_is_refused_in_one_line(chain):
    proc = run_script(["eval.py", "--ckpt_file", chain["ckpt"], "--data_path", chain["data"], "--dataset", "mnist",
                       "--hidden_channels", "[8]"])
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "hidden_channels=[4]" in lines[0] and "hidden_channels=[8]" in lines[0], proc.stderr


def assert_printed_mean_row(stdout, expected, stage):
    """The ``mean`` row of a metrics table printed by predict.py equals ``expected`` to its printed
    precision (half a unit of the last printed digit) plus the fp32 tolerance above."""
    row = next(line.split() for line in stdout.splitlines() if line.strip().startswith("mean "))
    for key, text in zip(("mse", "mae", "ssim", "ssim_openstl", "psnr"), row[1:]):
        decimals = len(text.split(".")[1]) if "." in text else 0
        tolerance = 0.5 * 10 ** -decimals + 1e-4 * abs(expected[key])
        assert abs(float(text) - expected[key]) <= tolerance, f"{stage}: {key} printed {text}, expected {expected[key]}"


@pytest.mark.slow
def test_own_sequences_model_through_run_eval_export_and_predict(tmp_path):
    """configs/rain_cpu.yaml (narrow) trained on a generated rain-cell file -> eval.py -> run_eval.sh
    with the training yaml -> export MINDIR -> predict.py on the same test windows: the metrics and
    the skill scores of every stage equal eval.py's (tolerances as above)."""
    from src.data.rain_cells import RainCells

    rain_config = os.path.join(REPO, "configs", "rain_cpu.yaml")
    data = tmp_path / "rain.npy"
    np.save(data, RainCells(20, 15, 32).block(0, 20))  # (N, T, C, H, W) dBZ
    run([sys.executable, os.path.join(REPO, "train.py"), "--config_path", rain_config, "--data_path", str(data),
         "--hidden_channels", "[4]", "--epochs", "1", "--steps_per_epoch", "2", "--batch_size", "2",
         "--val_sequences", "2", "--log_every", "1", "--output_dir", "run"], tmp_path)
    ckpt = str(tmp_path / "run" / "ckpt" / "last.ckpt")

    run([sys.executable, os.path.join(REPO, "eval.py"), "--ckpt_file", ckpt], tmp_path)  # data_path: the model's
    evaluated = read_json(tmp_path / "run" / "eval" / "metrics.json")
    assert evaluated["num_sequences"] >= 2 and evaluated["skill_scores"], evaluated.keys()

    run(["bash", os.path.join(REPO, "scripts", "run_eval.sh"), rain_config, ckpt, str(data), "CPU", "0",
         "--output_dir", str(tmp_path / "run_eval")], tmp_path)
    through_script = read_json(tmp_path / "run_eval" / "metrics.json")
    assert_same_metrics(through_script, evaluated, "run_eval.sh")
    assert through_script["skill_scores"] == evaluated["skill_scores"]

    name = str(tmp_path / "model" / "rain")
    run([sys.executable, os.path.join(REPO, "export.py"), "--ckpt_file", ckpt, "--file_name", name, "--check", "true"],
        tmp_path)
    proc = run([sys.executable, os.path.join(REPO, "predict.py"), "--mindir_file", name + ".mindir", "--data_path",
                str(data), "--output_dir", str(tmp_path / "predict")], tmp_path)
    assert_printed_mean_row(proc.stdout, evaluated, "predict.py --mindir_file")
    predictions = np.load(tmp_path / "predict" / "predictions.npy")  # NTCHW, in the data's units (dBZ)
    assert predictions.shape[0] == evaluated["num_sequences"] and predictions.shape[1:] == (10, 1, 32, 32)
    # dBZ, not the network's [0, 1]: (dBZ + 10) / 70 maps them back into [0, 1], and echo reaches well above 1 dBZ
    assert predictions.min() >= -10 - 1e-3 and predictions.max() <= 60 + 1e-3 and predictions.max() > 1
