"""eval_onnx.py, src/onnx_evaluation.py and scripts/run_eval_onnx.sh: an exported ONNX model is
scored by the loop and metrics of eval.py, into the same metrics.json, with no repeated flags."""
import json
import os

import pytest

from tests.exported_models import (REPO, SMALL, assert_one_line_error, run_script, run_without_onnxruntime,
                                   save_tiny_checkpoint, tiny_config, write_random_test_file)
from tests.onnx_builder import identity_model, with_metadata

SCRIPT = os.path.join(REPO, "scripts", "run_eval_onnx.sh")
METRICS = ("mse", "mae", "ssim", "psnr")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("eval_onnx")


@pytest.fixture(scope="module")
def test_file(work):
    path = work / "mnist_test_seq.npy"
    write_random_test_file(path, 3, seed=11)
    return str(path)


@pytest.fixture(scope="module")
def exported(work):
    """(checkpoint, .onnx exported from it with batch 2): a paper network of one 4-channel layer."""
    from src.export.writer import export_network
    from src.checkpoint import load_network_from_checkpoint

    cfg = tiny_config(work / "run", eval_batch_size=2)
    ckpt = save_tiny_checkpoint(work / "tiny.ckpt", cfg)
    net, cfg = load_network_from_checkpoint(ckpt, cfg.replace(ckpt_file=ckpt))
    path, _, _ = export_network(net, cfg, 2, str(work / "tiny"), "ONNX")
    return ckpt, path


@pytest.mark.slow
def test_eval_onnx_writes_the_metrics_json_of_eval_py(work, exported, test_file):
    ckpt, onnx_file = exported
    data = ["--dataset", "mnist", "--data_path", test_file, "--save_vis", "1"]
    proc = run_script(["eval_onnx.py", "--onnx_file", onnx_file, "--output_dir", str(work / "onnx_out")] + data)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "engine onnxruntime" in proc.stdout and f"model={onnx_file}" in proc.stdout
    # eval.py needs the architecture repeated; eval_onnx.py read it from the file
    arch = ["--config_path", SMALL, "--hidden_channels", "4", "--patch_size", "4", "--eval_batch_size", "2"]
    proc = run_script(["eval.py", "--ckpt_file", ckpt, "--output_dir", str(work / "ckpt_out")] + arch + data)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    onnx_report = json.load(open(work / "onnx_out" / "metrics.json"))
    ckpt_report = json.load(open(work / "ckpt_out" / "metrics.json"))

    assert set(onnx_report) == set(ckpt_report) | {"model_file", "engine"}
    assert onnx_report["engine"] == "onnxruntime" and onnx_report["model_file"] == onnx_file
    assert onnx_report["checkpoint"] == ckpt_report["checkpoint"] == ckpt  # the one it was exported from
    assert onnx_report["command"][0] == "eval_onnx.py" and onnx_report["num_sequences"] == 3
    assert onnx_report["config"]["hidden_channels"] == [4]  # from the file: not given on the command line
    for key in METRICS:  # the same predictions within 1e-5 per pixel: the same scores
        assert onnx_report[key] == pytest.approx(ckpt_report[key], rel=1e-4), key
        assert onnx_report[key] != pytest.approx(onnx_report["baselines"]["zeros"][key], rel=1e-3)
        assert onnx_report["per_frame"][key] == pytest.approx(ckpt_report["per_frame"][key], rel=1e-4)
    assert onnx_report["baselines"] == ckpt_report["baselines"]
    assert sorted(os.listdir(work / "onnx_out" / "vis")) == ["seq_0000.gif", "seq_0000.png"]


@pytest.mark.slow
def test_in_a_training_run_the_results_go_to_eval_onnx(work, exported, test_file):
    run = work / "run_dir"
    (run / "ckpt").mkdir(parents=True)
    (run / "config.yaml").write_text("arch: paper\n")
    args = ["--onnx_file", exported[1], "--dataset", "mnist", "--data_path", test_file, "--output_dir", str(run)]
    proc = run_script(["eval_onnx.py", "--print_eval_dir"] + args)
    assert proc.returncode == 0 and proc.stdout.strip() == str(run / "eval_onnx"), proc.stderr
    assert run_script(["eval_onnx.py"] + args).returncode == 0
    assert sorted(os.listdir(run)) == ["ckpt", "config.yaml", "eval_onnx"]
    assert (run / "config.yaml").read_text() == "arch: paper\n"


# ---------------------------------------------------------------- bad input: one line, non-zero exit

@pytest.mark.slow
def test_bad_models_are_one_line_errors(work, exported, test_file):
    no_config = work / "no_config.onnx"
    no_config.write_bytes(identity_model((1, 10, 1, 64, 64)))
    data = ["--dataset", "mnist", "--data_path", test_file, "--output_dir", str(work / "refused")]
    cases = [
        ([], ("no model given", "--onnx_file")),
        (["--onnx_file", str(work / "missing.onnx")], ("missing.onnx not found",)),
        (["--onnx_file", test_file], ("is not an ONNX model file",)),
        (["--onnx_file", str(no_config)], ("carries no readable ConvLSTM config",)),
        (["--onnx_file", exported[1], "--baseline", "zeros"], ("eval.py --baseline",)),
        (["--onnx_file", exported[1], "--threads", "two"], ("--threads",)),
        (["--onnx_file", exported[1], "--output_frames", "5"], ("was built for output_frames=10", "output_frames=5")),
    ]
    for args, fragments in cases:
        assert_one_line_error(run_script(["eval_onnx.py"] + args + data), *fragments)
    assert not (work / "refused" / "metrics.json").exists()


@pytest.mark.slow
def test_missing_onnxruntime_is_one_line(work, exported, test_file):
    proc = run_without_onnxruntime("eval_onnx.py", ["--onnx_file", exported[1], "--dataset", "mnist", "--data_path",
                                                    test_file, "--output_dir", str(work / "no_ort")])
    assert_one_line_error(proc, "ONNX Runtime", "requirements-onnx.txt")
    assert not (work / "no_ort" / "metrics.json").exists()


def test_metadata_of_an_exported_file_is_what_model_info_reads(tmp_path):
    """The ONNX file's stored config is a metadata entry ONNX Runtime exposes too."""
    import onnxruntime as ort

    from src.export.model_info import CONFIG_INFO_KEY

    cfg = tiny_config(tmp_path)
    path = tmp_path / "m.onnx"
    path.write_bytes(with_metadata(identity_model((1, 10, 1, 64, 64)), {CONFIG_INFO_KEY: cfg.to_yaml()}))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map[CONFIG_INFO_KEY] == cfg.to_yaml()


# ---------------------------------------------------------------- scripts/run_eval_onnx.sh

@pytest.mark.parametrize("args", [[], ["model.onnx"], ["missing.onnx", "."], ["README.md", "."],
                                  ["scripts/run_eval_onnx.sh", "."]])
def test_run_eval_onnx_sh_wrong_arguments_print_usage(args):
    proc = run_script([SCRIPT] + args)
    assert proc.returncode == 1
    assert "Usage: bash scripts/run_eval_onnx.sh [ONNX_PATH] [DATA_PATH]" in proc.stdout


@pytest.mark.slow
def test_run_eval_onnx_sh_runs_and_logs(work, exported, test_file, tmp_path):
    rel_model, rel_data = os.path.relpath(exported[1], tmp_path), os.path.relpath(test_file, tmp_path)
    proc = run_script([SCRIPT, rel_model, rel_data, "--num_sequences", "2", "--output_dir", "res"], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:]
    log = (tmp_path / "res" / "eval_onnx.log").read_text()
    assert "result: mse=" in log and "result: mse=" in proc.stdout
    report = json.load(open(tmp_path / "res" / "metrics.json"))
    assert report["dataset"] == "mnist" and report["num_sequences"] == 2 and report["engine"] == "onnxruntime"


def test_run_eval_onnx_sh_passes_errors_through(tmp_path):
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"not a model")
    proc = run_script([SCRIPT, str(fake), str(tmp_path)])
    assert proc.returncode != 0
    assert "error: " in proc.stdout and "not an ONNX model file" in proc.stdout
