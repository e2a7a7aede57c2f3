"""Export and inference: MINDIR export and parity, predict.py on user arrays, one-line refusals,
the Ascend 310 pre/post-processing round trip, and the 310 launcher's argument check.

One tiny checkpoint (paper arch, one 4-channel ConvLSTM layer, 64x64 frames) is exported once
per module; the command-line tools run as subprocesses so their exit codes and messages are
what a user sees.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from src.errors import DataError, UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_TEST_SEQUENCES = 4


def _run(args, cwd=REPO, timeout=300):
    """Run a repository script (python file or bash script) and return the CompletedProcess."""
    cmd = ["bash"] + args if args[0].endswith(".sh") else [sys.executable] + args
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=REPO)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _messages(stderr):
    """stderr without MindSpore's own log lines ([WARNING] ... / [INFO] ...)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("[")]


def _assert_one_line_error(proc, *fragments):
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = _messages(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _value_after(text, label):
    """The float printed right after ``label`` in ``text``."""
    tail = text.split(label, 1)[1].split()[0]
    return float(tail)


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("inference")


@pytest.fixture(scope="module")
def checkpoint(work):
    """A freshly initialised tiny network saved as a checkpoint with its config."""
    from src.config import load_config
    from src.models.encoder_forecaster import build_network
    from src.training.checkpoint import save_checkpoint

    cfg = load_config(config_path=os.path.join(REPO, "configs", "cpu_small.yaml"), hidden_channels=[4],
                      patch_size=4, image_size=64, output_dir=str(work / "run"))
    path = str(work / "tiny.ckpt")
    save_checkpoint(path, build_network(cfg), cfg, meta={}, optimizer=None)
    return path


@pytest.fixture(scope="module")
def exported(work, checkpoint):
    """export.py --check true: (CompletedProcess, path of the .mindir)."""
    proc = _run(["export.py", "--ckpt_file", checkpoint, "--file_name", str(work / "model" / "tiny"),
                 "--check", "true"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, str(work / "model" / "tiny.mindir")


@pytest.fixture(scope="module")
def test_file(work):
    """A 4-sequence mnist_test_seq.npy in the published (20, N, 64, 64) uint8 layout."""
    from src.data.test_set import write_test_file

    rng = np.random.default_rng(7)
    sequences = (rng.random((NUM_TEST_SEQUENCES, 20, 64, 64)) * 256).astype(np.uint8)  # (N, T, H, W)
    path = str(work / "mnist_test_seq.npy")
    write_test_file(path, sequences)
    return path, sequences


@pytest.fixture(scope="module")
def uint8_prediction(work, exported, test_file):
    """predict.py on a uint8 (3, 10, 64, 64) user array = the first 3 test sequences' inputs."""
    user = test_file[1][:3, :10]  # (3, 10, 64, 64) uint8
    path = str(work / "user_uint8.npy")
    np.save(path, user)
    out = work / "pred_uint8"
    proc = _run(["predict.py", "--mindir_file", exported[1], "--input", path, "--output_dir", str(out),
                 "--save_vis", "1"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, out


# ---------------------------------------------------------------- export

@pytest.mark.slow
def test_export_prints_shapes_and_matches_checkpoint(exported):
    proc, path = exported
    assert os.path.isfile(path)
    assert f"exported MINDIR: {path}" in proc.stdout
    assert "input : (1, 10, 1, 64, 64) float32" in proc.stdout
    assert "output: (1, 10, 1, 64, 64) float32" in proc.stdout
    diff = _value_after(proc.stdout, "max |exported - checkpoint| =")
    assert diff <= 1e-5, proc.stdout
    assert not [n for n in os.listdir(os.path.dirname(path)) if n != "tiny.mindir"]  # no scratch files left


@pytest.mark.slow
def test_export_of_the_prediction_fed_forecaster_matches_checkpoint(work):
    """The frame-by-frame forecaster (forecaster_input: prediction) exports and runs as MindIR too."""
    from src.config import load_config
    from src.models.encoder_forecaster import build_network
    from src.training.checkpoint import save_checkpoint

    cfg = load_config(config_path=os.path.join(REPO, "configs", "cpu_small.yaml"), hidden_channels=[4, 4],
                      forecaster_input="prediction", output_dir=str(work / "fed_run"))
    path = str(work / "fed.ckpt")
    save_checkpoint(path, build_network(cfg), cfg, meta={}, optimizer=None)
    proc = _run(["export.py", "--ckpt_file", path, "--file_name", str(work / "fed_model" / "fed"), "--check", "true"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _value_after(proc.stdout, "max |exported - checkpoint| =") <= 1e-5, proc.stdout


@pytest.mark.slow
def test_exported_file_carries_signature_and_config(exported):
    from src.inference import read_mindir_info

    info = read_mindir_info(exported[1])
    assert info.input_shape == (1, 10, 1, 64, 64) and info.output_shape == (1, 10, 1, 64, 64)
    assert info.config is not None and info.config.hidden_channels == [4]


def test_air_on_cpu_is_refused_without_leaving_a_file(work, checkpoint):
    target = work / "air_out"
    proc = _run(["export.py", "--ckpt_file", checkpoint, "--file_format", "AIR", "--file_name",
                 str(target / "tiny")])
    _assert_one_line_error(proc, "AIR", "Ascend")
    assert not target.exists() or not os.listdir(target)


# ---------------------------------------------------------------- predict.py

@pytest.mark.slow
def test_predict_uint8_batch(uint8_prediction):
    proc, out = uint8_prediction
    pred = np.load(out / "predictions.npy")
    assert pred.shape == (3, 10, 64, 64) and pred.dtype == np.float32
    assert 0.0 <= pred.min() and pred.max() <= 1.0 and np.isfinite(pred).all()
    assert (out / "vis" / "seq_0000.png").is_file()
    assert not (out / "vis" / "seq_0001.png").exists()  # --save_vis 1
    assert str(out / "predictions.npy") in proc.stdout


@pytest.mark.slow
def test_predict_float_single_sequence_from_checkpoint_matches_mindir(work, checkpoint, test_file,
                                                                      uint8_prediction):
    """(10, 64, 64) float input run by the checkpoint network = uint8 input run by the MINDIR."""
    single = test_file[1][0, :10].astype(np.float32) / 255.0  # (10, 64, 64) in [0, 1]
    path = str(work / "user_float.npy")
    np.save(path, single)
    out = work / "pred_float"
    proc = _run(["predict.py", "--ckpt_file", checkpoint, "--input", path, "--output_dir", str(out),
                 "--mode", "pynative"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pred = np.load(out / "predictions.npy")
    assert pred.shape == (1, 10, 64, 64)
    from_mindir = np.load(uint8_prediction[1] / "predictions.npy")[:1]
    assert np.abs(pred - from_mindir).max() <= 1e-5


def _fake_predictor(offset, size):
    """A Predictor (batch 2) whose 'network' returns input * 0.5 + offset."""
    import mindspore as ms

    from src.inference import Predictor

    def forward(x):  # (B, 10, 1, S, S) -> (B, 10, 1, S, S)
        return ms.Tensor(x.asnumpy() * 0.5 + offset)

    return Predictor(forward, 2, (2, 10, 1, size, size), output_frames=10)


def test_predict_parity_check_refuses_models_that_differ(work):
    import predict
    from src.config import load_config

    cfg = load_config(config_path=os.path.join(REPO, "configs", "cpu_small.yaml"), image_size=32,
                      output_dir=str(work / "fake"))
    inputs = np.random.default_rng(3).random((3, 10, 1, 32, 32)).astype(np.float32)
    source = predict.ArraySource(inputs)
    _, same = predict.run_predictions(_fake_predictor(0.0, 32), _fake_predictor(0.0, 32), source, cfg)
    assert same.max_diff == 0.0
    predict.check_parity(same, 1e-5, "a.mindir", "a.ckpt")  # identical models pass
    written = np.load(work / "fake" / "predictions.npy")  # (3, 10, 32, 32)
    np.testing.assert_allclose(written, inputs[:, :, 0] * 0.5, atol=1e-7)
    _, differ = predict.run_predictions(_fake_predictor(0.0, 32), _fake_predictor(0.01, 32), source, cfg)
    assert abs(differ.max_diff - 0.01) < 1e-6
    with pytest.raises(UserError, match=r"parity check failed: a\.mindir and b\.ckpt differ by up to 1\.000e-02"):
        predict.check_parity(differ, 1e-5, "a.mindir", "b.ckpt")


@pytest.mark.slow
def test_predict_refuses_bad_shape_in_one_line(work, exported):
    path = str(work / "bad_shape.npy")
    np.save(path, np.zeros((9, 64, 64), dtype=np.float32))
    proc = _run(["predict.py", "--mindir_file", exported[1], "--input", path, "--output_dir",
                 str(work / "pred_bad")])
    line = _assert_one_line_error(proc, "has shape (9, 64, 64)", "expected (N, 10, 64, 64) or (10, 64, 64)")
    assert "bad_shape.npy" in line
    assert not (work / "pred_bad" / "predictions.npy").exists()


@pytest.mark.parametrize("array, fragment", [
    (np.full((10, 64, 64), np.nan, dtype=np.float32), "NaN"),
    (np.full((2, 10, 64, 64), 1.5, dtype=np.float64), "must lie in [0, 1]"),
    (np.full((10, 64, 64), 200.0, dtype=np.float32), "divide by 255"),
    (np.zeros((10, 64, 64), dtype=np.int64), "dtype int64"),
    (np.zeros((2, 10, 32, 32), dtype=np.uint8), "shape (2, 10, 32, 32)"),
    (np.zeros((0, 10, 64, 64), dtype=np.uint8), "shape (0, 10, 64, 64)"),
])
def test_user_arrays_with_bad_values_are_refused(array, fragment):
    from src.inference import normalise_user_array

    with pytest.raises(DataError) as err:
        normalise_user_array(array, "x.npy")
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_user_arrays_are_normalised():
    from src.inference import normalise_user_array

    u8 = np.arange(10 * 64 * 64, dtype=np.int64).reshape(10, 64, 64) % 256
    as_uint8 = normalise_user_array(u8.astype(np.uint8), "a")
    as_float = normalise_user_array(u8.astype(np.float64) / 255.0, "b")
    as_5d = normalise_user_array((u8.astype(np.float32) / 255.0)[None, :, None], "c")
    assert as_uint8.shape == (1, 10, 1, 64, 64) and as_uint8.dtype == np.float32
    assert as_uint8.max() == 1.0 and as_uint8.min() == 0.0
    np.testing.assert_allclose(as_float, as_uint8, atol=1e-7)
    np.testing.assert_allclose(as_5d, as_uint8, atol=1e-7)


def test_predictor_pads_the_last_batch_to_the_fixed_size():
    import mindspore as ms

    from src.inference import Predictor

    seen = []

    def forward(x):  # (B, T_in, 1, H, W) -> (B, 2, 1, H, W): frame 0 and frame 0 + 1
        arr = x.asnumpy()
        seen.append(arr.shape[0])
        return ms.Tensor(np.concatenate([arr[:, :1], arr[:, :1] + 1.0], axis=1))

    predictor = Predictor(forward, 2, (2, 3, 1, 4, 4), output_frames=2)
    inputs = np.random.default_rng(0).random((3, 3, 1, 4, 4)).astype(np.float32)
    out = predictor.predict(inputs)
    assert seen == [2, 2]  # the single last sequence was padded to a batch of 2
    assert out.shape == (3, 2, 1, 4, 4)
    np.testing.assert_array_equal(out[:, 0], inputs[:, 0])
    np.testing.assert_array_equal(out[:, 1], inputs[:, 0] + 1.0)


# ---------------------------------------------------------------- Ascend 310 pre/post-processing

@pytest.mark.slow
def test_preprocess_postprocess_round_trip_reproduces_metrics(work, exported, test_file, uint8_prediction):
    """preprocess -> MINDIR on CPU writing <name>_0.bin (stand-in for the 310 app) -> postprocess."""
    import postprocess
    import preprocess
    from src.data.test_set import TestSequences
    from src.inference import read_bin
    from src.metrics import StreamingMetrics

    pre_dir, result_dir = work / "preprocess_Result", work / "result_Files"
    assert preprocess.main(["--data_path", test_file[0], "--output_dir", str(pre_dir), "--num_sequences", "0",
                            "--mindir_file", exported[1]]) == 0
    source = TestSequences(test_file[0])
    names = sorted(os.listdir(pre_dir / "input"))
    assert names == [f"seq_{i:05d}.bin" for i in range(NUM_TEST_SEQUENCES)]
    for i, name in enumerate(names):  # inputs are exactly the test reader's frames
        np.testing.assert_array_equal(read_bin(str(pre_dir / "input" / name), (1, 10, 1, 64, 64))[0], source[i][0])

    proc = _run(["predict.py", "--mindir_file", exported[1], "--bin_dir", str(pre_dir / "input"),
                 "--result_dir", str(result_dir)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outputs = np.stack([read_bin(str(result_dir / f"seq_{i:05d}_0.bin"), (1, 10, 1, 64, 64))[0]
                        for i in range(NUM_TEST_SEQUENCES)])  # (N, 10, 1, 64, 64)
    # same model, same inputs as predict.py --input: the same predictions
    np.testing.assert_allclose(outputs[:3, :, 0], np.load(uint8_prediction[1] / "predictions.npy"), atol=1e-6)

    assert postprocess.main(["--result_path", str(result_dir), "--preprocess_path", str(pre_dir),
                             "--output_dir", str(work)]) == 0
    with open(work / "metrics_310.json", encoding="utf-8") as f:
        reported = json.load(f)
    targets = np.stack([source[i][1] for i in range(NUM_TEST_SEQUENCES)])  # (N, 10, 1, 64, 64)
    direct = StreamingMetrics().update(outputs, targets).result()
    assert reported["num_sequences"] == NUM_TEST_SEQUENCES
    for key in ("mse", "mae", "ssim", "psnr"):
        assert abs(reported[key] - direct[key]) <= 1e-6, key
        np.testing.assert_allclose(reported["per_frame"][key], direct["per_frame"][key], atol=1e-6, rtol=0)


def test_postprocess_reports_missing_outputs(work, test_file):
    import postprocess
    import preprocess

    pre_dir, result_dir = work / "pre_missing", work / "results_missing"
    preprocess.main(["--data_path", test_file[0], "--output_dir", str(pre_dir), "--num_sequences", "2"])
    os.makedirs(result_dir)
    np.zeros((1, 10, 1, 64, 64), np.float32).tofile(result_dir / "seq_00000_0.bin")
    with pytest.raises(DataError, match=r"1 of 2 outputs missing .*seq_00001_0\.bin"):
        postprocess.main(["--result_path", str(result_dir), "--preprocess_path", str(pre_dir)])


def test_read_bin_checks_the_size(work):
    from src.inference import read_bin, write_bin

    path = str(work / "short.bin")
    write_bin(path, np.zeros((1, 9, 1, 64, 64)))
    with pytest.raises(DataError, match="expected 163840"):
        read_bin(path, (1, 10, 1, 64, 64))


def test_run_infer_310_without_arguments_prints_usage():
    proc = _run(["scripts/run_infer_310.sh"], timeout=30)
    assert proc.returncode == 1
    assert proc.stdout.startswith("Usage: bash scripts/run_infer_310.sh [MINDIR_PATH] [DATA_PATH] [DEVICE_ID]")


def test_run_infer_310_checks_the_model_path(work):
    proc = _run(["scripts/run_infer_310.sh", str(work / "missing.mindir"), str(work)], timeout=30)
    assert proc.returncode == 1
    assert "error: MINDIR_PATH" in proc.stdout and "not found" in proc.stdout
