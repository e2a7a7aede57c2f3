"""export.py and src/export/writer.py: MINDIR and ONNX files that reproduce the checkpoint
network and carry its config, AIR refused off Ascend, no partial files.

The command-line tests export one tiny checkpoint (paper arch, one 4-channel ConvLSTM layer,
64x64 frames) as subprocesses, so exit codes and messages are what a user sees. The ONNX
parity tests export in this process and compare ONNX Runtime with the MindSpore network on
both architectures.
"""
import os

import numpy as np
import pytest

from tests.exported_models import (assert_one_line_error, run_script, run_without_onnxruntime, save_tiny_checkpoint,
                                   tiny_config, value_after)

ONNX_TOLERANCE = 1e-5  # ONNX Runtime vs MindSpore on CPU, float32


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def checkpoint(work):
    return save_tiny_checkpoint(work / "tiny.ckpt", tiny_config(work / "run"))


@pytest.fixture(scope="module")
def exported(work, checkpoint):
    """export.py --check true: (CompletedProcess, path of the .mindir)."""
    proc = run_script(["export.py", "--ckpt_file", checkpoint, "--file_name", str(work / "model" / "tiny"),
                       "--check", "true"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, str(work / "model" / "tiny.mindir")


# ---------------------------------------------------------------- MINDIR

@pytest.mark.slow
def test_export_prints_shapes_and_matches_checkpoint(exported):
    proc, path = exported
    assert os.path.isfile(path)
    assert f"exported MINDIR: {path}" in proc.stdout
    assert "input : (1, 10, 1, 64, 64) float32" in proc.stdout
    assert "output: (1, 10, 1, 64, 64) float32" in proc.stdout
    diff = value_after(proc.stdout, "max |exported - checkpoint| =")
    assert diff <= 1e-5, proc.stdout
    assert not [n for n in os.listdir(os.path.dirname(path)) if n != "tiny.mindir"]  # no scratch files left


@pytest.mark.slow
def test_export_of_the_prediction_fed_forecaster_matches_checkpoint(work):
    """The frame-by-frame forecaster (forecaster_input: prediction) exports and runs as MindIR too."""
    cfg = tiny_config(work / "fed_run", hidden_channels=[4, 4], forecaster_input="prediction")
    path = save_tiny_checkpoint(work / "fed.ckpt", cfg)
    proc = run_script(["export.py", "--ckpt_file", path, "--file_name", str(work / "fed_model" / "fed"),
                       "--check", "true"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert value_after(proc.stdout, "max |exported - checkpoint| =") <= 1e-5, proc.stdout


@pytest.mark.slow
def test_exported_file_carries_signature_and_config(exported):
    from src.export.model_info import read_mindir_info

    info = read_mindir_info(exported[1])
    assert info.input_shape == (1, 10, 1, 64, 64) and info.output_shape == (1, 10, 1, 64, 64)
    assert info.config is not None and info.config.hidden_channels == [4]


def test_air_on_cpu_is_refused_without_leaving_a_file(work, checkpoint):
    target = work / "air_out"
    proc = run_script(["export.py", "--ckpt_file", checkpoint, "--file_format", "AIR", "--file_name",
                       str(target / "tiny")])
    assert_one_line_error(proc, "AIR", "Ascend")
    assert not target.exists() or not os.listdir(target)


# ---------------------------------------------------------------- ONNX

@pytest.mark.slow
def test_onnx_export_checks_parity_and_carries_the_config(work, checkpoint):
    from src.export.model_info import read_onnx_info

    out = work / "onnx_model"
    proc = run_script(["export.py", "--ckpt_file", checkpoint, "--file_format", "ONNX", "--file_name",
                       str(out / "tiny"), "--batch_size", "2", "--check", "true"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = str(out / "tiny.onnx")
    assert f"exported ONNX: {path}" in proc.stdout and "input : (2, 10, 1, 64, 64) float32" in proc.stdout
    assert value_after(proc.stdout, "max |exported - checkpoint| =") <= ONNX_TOLERANCE, proc.stdout
    assert os.listdir(out) == ["tiny.onnx"]  # no scratch files left
    info = read_onnx_info(path)
    assert info.input_shape == (2, 10, 1, 64, 64) and info.output_shape == (2, 10, 1, 64, 64)
    assert info.config.hidden_channels == [4] and info.config.ckpt_file == checkpoint
    assert info.input_name == "frames"


def test_onnx_check_without_onnxruntime_is_one_line_before_any_export(work, checkpoint):
    out = work / "onnx_no_ort"
    proc = run_without_onnxruntime("export.py", ["--ckpt_file", checkpoint, "--file_format", "ONNX", "--file_name",
                                                 str(out / "tiny"), "--check", "true"])
    assert_one_line_error(proc, "ONNX Runtime", "requirements-onnx.txt")
    assert not out.exists()


def _perturbed(net, seed):
    """Move every parameter off its initial value (zero peepholes, unit GroupNorm scale) so that
    each operator of the network changes the output."""
    import mindspore as ms

    rng = np.random.default_rng(seed)
    for _, param in sorted(net.parameters_and_names()):
        noise = 0.1 * rng.standard_normal(param.shape).astype(np.float32)
        param.set_data(ms.Tensor(param.asnumpy() + noise))
    return net


def _zoo_tiny(cfg):
    """The zoo network at 32x32 with narrow levels (same operators as the published widths)."""
    from src.models.encoder_forecaster import ZooEncoderForecaster

    return ZooEncoderForecaster(cfg.input_frames, cfg.output_frames, cfg.image_size, peephole=cfg.peephole,
                                channels=(4, 8, 8))


ONNX_CASES = {
    "paper": dict(arch="paper", hidden_channels=[4, 4], kernel_size=3, image_size=32),
    "paper_peephole_group_norm_fed": dict(arch="paper", hidden_channels=[4, 4], kernel_size=3, image_size=32,
                                          peephole=True, group_norm=True, forecaster_input="prediction"),
    "zoo": dict(arch="zoo", image_size=32, peephole=True),
    "stacked": dict(arch="stacked", hidden_channels=[4, 4], kernel_size=3, image_size=32),
    "stacked_linear": dict(arch="stacked", hidden_channels=[4, 4], kernel_size=3, image_size=32, loss="mse",
                           output_activation="linear", output_bias=0.0, forget_bias=0.0),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(set(ONNX_CASES) - {"stacked_linear"}))
def test_onnx_runtime_matches_the_mindspore_network(case, tmp_path, pynative_mode):
    """Both architectures (deconvolutions, GroupNorm, peepholes, the prediction-fed forecaster):
    ONNX Runtime output = MindSpore output within 1e-5 on the same seeded input."""
    import mindspore as ms

    from src.export.model_info import read_onnx_info
    from src.export.writer import export_network
    from src.models.network import build_network
    from src.predictor import BatchPredictor

    cfg = tiny_config(tmp_path, **ONNX_CASES[case])
    ms.set_seed(0)
    net = _perturbed(_zoo_tiny(cfg) if cfg.arch == "zoo" else build_network(cfg), seed=1)
    net.set_train(False)
    x = np.random.default_rng(2).random((3, 10, 1, 32, 32), dtype=np.float32)  # (B, T_in, 1, H, W)
    expected = net(ms.Tensor(x)).asnumpy()
    path, _, _ = export_network(net, cfg, 2, str(tmp_path / case), "ONNX")
    got = BatchPredictor.from_model(read_onnx_info(path)).predict(x)  # batch 2: the last one padded
    assert got.shape == expected.shape == (3, 10, 1, 32, 32)
    assert np.abs(got - expected).max() <= ONNX_TOLERANCE
    assert np.abs(expected - expected.mean()).max() > 1e-3  # the output is not constant
    assert np.abs(expected[0] - expected[1]).max() > 1e-3  # and depends on the input


@pytest.mark.slow
@pytest.mark.parametrize("case", ["paper_peephole_group_norm_fed", "zoo", "stacked_linear"])
def test_mindir_matches_the_mindspore_network_with_perturbed_weights(case, tmp_path, pynative_mode):
    """The exported MINDIR (reloaded with mindspore.load + nn.GraphCell) = the network it came from,
    on weights moved off their initial values so that every operator counts."""
    import mindspore as ms

    from src.export.model_info import read_model_info
    from src.export.writer import export_network
    from src.models.network import build_network
    from src.predictor import BatchPredictor

    cfg = tiny_config(tmp_path, **ONNX_CASES[case])
    ms.set_seed(0)
    net = _perturbed(_zoo_tiny(cfg) if cfg.arch == "zoo" else build_network(cfg), seed=3)
    net.set_train(False)
    x = np.random.default_rng(4).random((3, 10, 1, 32, 32), dtype=np.float32)  # (B, T_in, 1, H, W)
    expected = net(ms.Tensor(x)).asnumpy()
    path, _, _ = export_network(net, cfg, 2, str(tmp_path / case), "MINDIR")
    got = BatchPredictor.from_model(read_model_info(path, "MINDIR")).predict(x)
    assert got.shape == expected.shape == (3, 10, 1, 32, 32)
    assert np.abs(got - expected).max() <= ONNX_TOLERANCE
    assert np.abs(expected[0] - expected[1]).max() > 1e-3  # the output depends on the input


def test_onnx_exportable_switches_the_gate_norms_and_restores_them():
    from src.export.writer import onnx_exportable
    from src.models.convlstm_cell import GateNorm
    from src.models.network import build_network

    net = build_network(tiny_config(".", hidden_channels=[4, 4], group_norm=True))
    norms = [cell for _, cell in net.cells_and_names() if isinstance(cell, GateNorm)]
    assert len(norms) == 4 and not any(n.primitive_ops for n in norms)
    with pytest.raises(RuntimeError, match="inside"):
        with onnx_exportable(net):
            assert all(n.primitive_ops for n in norms)
            raise RuntimeError("inside")
    assert not any(n.primitive_ops for n in norms)


def _numpy_conv_transpose(x, weight, stride=2, pad=1):
    """ONNX ConvTranspose by its definition: y[o, i*s + a - p, j*s + b - p] += x[c, i, j] * W[c, o, a, b]."""
    n, _, h, w = x.shape
    k = weight.shape[2]
    full = np.zeros((n, weight.shape[1], (h - 1) * stride + k, (w - 1) * stride + k))
    for i in range(h):
        for j in range(w):
            full[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += np.einsum(
                "nc,coab->noab", x[:, :, i, j], weight)
    return full[:, :, pad:pad + h * stride, pad:pad + w * stride]


def test_conv_transpose_output_shape_is_cut_to_the_spatial_dims():
    """ONNX Runtime refuses MindSpore's 4-d output_shape; after the repair it computes the
    transposed convolution of its definition, and a second repair changes nothing."""
    import onnxruntime as ort

    from src.export.writer import fix_conv_transpose_output_shape
    from tests.onnx_builder import conv_transpose_model, onnx

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)  # (C_in, C_out, kH, kW)
    x = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    broken = conv_transpose_model(weight, x.shape, [1, 3, 6, 6])
    with pytest.raises(Exception, match="output_shape"):
        ort.InferenceSession(broken, providers=["CPUExecutionProvider"])
    model = onnx.load_from_string(broken)
    assert fix_conv_transpose_output_shape(model) == 1
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"x": x})[0], _numpy_conv_transpose(x, weight), rtol=1e-5,
                               atol=1e-5)
    assert fix_conv_transpose_output_shape(model) == 0


def test_onnx_export_without_the_onnx_package_says_how_to_install_it(monkeypatch):
    import builtins

    from src.export import ModelFileError
    from src.export.model_info import onnx_package

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx":
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(ModelFileError, match=r"pip install -r requirements-onnx\.txt"):
        onnx_package()
