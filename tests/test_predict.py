"""predict.py with an exported MINDIR, an exported ONNX file or a checkpoint: user arrays,
parity, one-line refusals, and the Ascend 310 pre/post-processing round trip (preprocess.py ->
predict.py --bin_dir standing in for the device -> postprocess.py).

One tiny checkpoint (paper arch, one 4-channel ConvLSTM layer, 64x64 frames) is exported once
per format; the scripts run as subprocesses so their exit codes and messages are what a user sees.
"""
import json
import os

import numpy as np
import pytest

from src.errors import DataError, UserError
from tests.exported_models import (SMALL, assert_one_line_error, run_script, run_without_onnxruntime,
                                   save_tiny_checkpoint, tiny_config, value_after, write_random_test_file)

NUM_TEST_SEQUENCES = 4


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("predict")


@pytest.fixture(scope="module")
def checkpoint(work):
    return save_tiny_checkpoint(work / "tiny.ckpt", tiny_config(work / "run"))


def _export(work, checkpoint, file_format):
    name = str(work / "model" / "tiny")
    proc = run_script(["export.py", "--ckpt_file", checkpoint, "--file_name", name, "--file_format", file_format])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return name + (".onnx" if file_format == "ONNX" else ".mindir")


@pytest.fixture(scope="module")
def mindir(work, checkpoint):
    return _export(work, checkpoint, "MINDIR")


@pytest.fixture(scope="module")
def onnx_model(work, checkpoint):
    return _export(work, checkpoint, "ONNX")


@pytest.fixture(scope="module")
def test_file(work):
    """A 4-sequence mnist_test_seq.npy in the published (20, N, 64, 64) uint8 layout."""
    path = work / "mnist_test_seq.npy"
    return str(path), write_random_test_file(path, NUM_TEST_SEQUENCES)


@pytest.fixture(scope="module")
def user_uint8(work, test_file):
    """A uint8 (3, 10, 64, 64) user array = the first 3 test sequences' inputs."""
    path = str(work / "user_uint8.npy")
    np.save(path, test_file[1][:3, :10])
    return path


@pytest.fixture(scope="module")
def uint8_prediction(work, mindir, user_uint8):
    """predict.py --mindir_file on the uint8 user array."""
    out = work / "pred_uint8"
    proc = run_script(["predict.py", "--mindir_file", mindir, "--input", user_uint8, "--output_dir", str(out),
                       "--save_vis", "1"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, out


# ---------------------------------------------------------------- MINDIR and checkpoint

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
    proc = run_script(["predict.py", "--ckpt_file", checkpoint, "--input", path, "--output_dir", str(out),
                       "--mode", "pynative"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pred = np.load(out / "predictions.npy")
    assert pred.shape == (1, 10, 64, 64)
    from_mindir = np.load(uint8_prediction[1] / "predictions.npy")[:1]
    assert np.abs(pred - from_mindir).max() <= 1e-5


def _fake_predictor(offset, size):
    """A BatchPredictor (batch 2) whose 'network' returns input * 0.5 + offset."""
    import mindspore as ms

    from src.predictor import BatchPredictor, mindspore_runner

    def forward(x):  # (B, 10, 1, S, S) -> (B, 10, 1, S, S)
        return ms.Tensor(x.asnumpy() * 0.5 + offset)

    return BatchPredictor(mindspore_runner(forward), 2, (10, 1, size, size), (10, 1, size, size))


def test_predict_parity_check_refuses_models_that_differ(work):
    import predict
    from src.config import load_config

    cfg = load_config(config_path=SMALL, image_size=32, output_dir=str(work / "fake"))
    inputs = np.random.default_rng(3).random((3, 10, 1, 32, 32)).astype(np.float32)
    source = [(sequence, None) for sequence in inputs]  # no targets
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
def test_predict_refuses_bad_shape_in_one_line(work, mindir):
    path = str(work / "bad_shape.npy")
    np.save(path, np.zeros((9, 64, 64), dtype=np.float32))
    proc = run_script(["predict.py", "--mindir_file", mindir, "--input", path, "--output_dir",
                       str(work / "pred_bad")])
    line = assert_one_line_error(proc, "has shape (9, 64, 64)", "expected (N, 10, 64, 64) or (10, 64, 64)")
    assert "bad_shape.npy" in line
    assert not (work / "pred_bad" / "predictions.npy").exists()


# ---------------------------------------------------------------- ONNX

@pytest.mark.slow
def test_predict_onnx_matches_the_mindir_and_the_checkpoint(work, onnx_model, checkpoint, user_uint8,
                                                            uint8_prediction):
    """--onnx_file alone (config from the file), then with --ckpt_file: the parity is printed."""
    out = work / "pred_onnx"
    proc = run_script(["predict.py", "--onnx_file", onnx_model, "--input", user_uint8, "--output_dir", str(out)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"model: {onnx_model} (onnxruntime, batch 1, 10 -> 10 frames of 64x64)" in proc.stdout
    from_onnx = np.load(out / "predictions.npy")
    assert from_onnx.shape == (3, 10, 64, 64)
    assert np.abs(from_onnx - np.load(uint8_prediction[1] / "predictions.npy")).max() <= 1e-5

    proc = run_script(["predict.py", "--onnx_file", onnx_model, "--ckpt_file", checkpoint, "--input", user_uint8,
                       "--output_dir", str(work / "pred_onnx_parity")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert value_after(proc.stdout, "max |exported - checkpoint| =") <= 1e-5


@pytest.mark.slow
def test_predict_onnx_refusals_are_one_line(work, mindir, onnx_model, user_uint8, test_file):
    cases = [
        (["--onnx_file", str(work / "missing.onnx")], ("missing.onnx not found",)),
        (["--onnx_file", test_file[0]], ("is not an ONNX model file",)),
        (["--onnx_file", mindir], ("is not an ONNX model file", "--mindir_file")),
        (["--onnx_file", onnx_model, "--mindir_file", mindir], ("give one exported model",)),
        (["--onnx_file", onnx_model, "--image_size", "32"], ("maps frames of 1x64x64", "1x32x32")),
    ]
    for args, fragments in cases:
        out = work / "pred_refused"
        proc = run_script(["predict.py"] + args + ["--input", user_uint8, "--output_dir", str(out)])
        assert_one_line_error(proc, *fragments)
        assert not (out / "predictions.npy").exists()


@pytest.mark.slow
def test_predict_onnx_without_onnxruntime_is_one_line(work, onnx_model, user_uint8):
    proc = run_without_onnxruntime("predict.py", ["--onnx_file", onnx_model, "--input", user_uint8,
                                                  "--output_dir", str(work / "pred_no_ort")])
    assert_one_line_error(proc, "ONNX Runtime", "requirements-onnx.txt")


# ---------------------------------------------------------------- Ascend 310 pre/post-processing

@pytest.mark.slow
def test_preprocess_postprocess_round_trip_reproduces_metrics(work, mindir, test_file, uint8_prediction):
    """preprocess -> MINDIR on CPU writing <name>_0.bin (stand-in for the 310 app) -> postprocess."""
    import postprocess
    import preprocess
    from src.data.sequences import open_test_file
    from src.export.bin_files import read_bin
    from src.metrics import StreamingMetrics

    pre_dir, result_dir = work / "preprocess_Result", work / "result_Files"
    assert preprocess.main(["--data_path", test_file[0], "--output_dir", str(pre_dir), "--num_sequences", "0",
                            "--mindir_file", mindir]) == 0
    source = open_test_file(test_file[0])
    names = sorted(os.listdir(pre_dir / "input"))
    assert names == [f"seq_{i:05d}.bin" for i in range(NUM_TEST_SEQUENCES)]
    for i, name in enumerate(names):  # inputs are exactly the test reader's frames
        np.testing.assert_array_equal(read_bin(str(pre_dir / "input" / name), (1, 10, 1, 64, 64))[0], source[i][0])

    proc = run_script(["predict.py", "--mindir_file", mindir, "--bin_dir", str(pre_dir / "input"),
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

