"""The benchmark's PyTorch reference computes the project's networks (skipped without PyTorch,
which is a benchmark-only dependency: ``pip install -r bench/requirements.txt``)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench import torch_reference  # noqa: E402
from src.config import load_config  # noqa: E402
from src.models.flops import network_cost  # noqa: E402


def _config(arch, **overrides):
    cfg = load_config(["--config_path", "configs/cpu.yaml", "--arch", arch, "--batch_size", "1"])
    return cfg.replace(**overrides)


@pytest.mark.parametrize("arch, overrides", [("paper", dict(hidden_channels=[8, 4], kernel_size=3)),
                                             ("paper", dict(hidden_channels=[8], group_norm=True)),
                                             ("zoo", {})])
@pytest.mark.parametrize("layout", torch_reference.LAYOUTS)
def test_parameter_count_matches_the_project_network(arch, overrides, layout):
    cfg = _config(arch, **overrides)
    net = torch_reference.build_network(cfg, layout)
    assert torch_reference.count_parameters(net) == network_cost(cfg)["params"]


@pytest.mark.parametrize("arch, overrides", [("paper", dict(hidden_channels=[8, 4], kernel_size=3)),
                                             ("paper", dict(hidden_channels=[8], group_norm=True))])
def test_layer_major_layout_computes_the_frame_by_frame_function(arch, overrides):
    cfg = _config(arch, **overrides)
    torch.manual_seed(0)
    frame_net = torch_reference.build_network(cfg, "frame")
    layer_net = torch_reference.build_network(cfg, "layer")
    torch_reference.copy_weights_frame_to_layer(frame_net, layer_net)
    x = torch.from_numpy(np.random.default_rng(0).random((2, 10, 1, 64, 64), dtype=np.float32))
    with torch.no_grad():
        expected, got = frame_net(x), layer_net(x)  # (B, T_out, 1, H, W)
    assert got.shape == (2, 10, 1, 64, 64)
    assert float(expected.abs().max()) > 1e-3  # not a trivially zero output
    np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)


def test_unknown_layout_is_refused():
    with pytest.raises(ValueError, match="layout"):
        torch_reference.build_network(_config("paper"), "diagonal")


def test_bf16_autocast_runs_in_bfloat16_and_stays_close_to_float32():
    cfg = _config("paper", hidden_channels=[8], kernel_size=3, batch_size=1)
    torch.manual_seed(0)
    net = torch_reference.build_network(cfg, "layer")
    x = torch.from_numpy(np.random.default_rng(0).random((1, 10, 1, 64, 64), dtype=np.float32))
    plain = torch_reference.build_predict_fn(net)(x)
    mixed = torch_reference.build_predict_fn(net, autocast_dtype=torch.bfloat16)(x)
    assert mixed.dtype == torch.float32
    difference = float((mixed - plain).abs().max())
    assert 0 < difference < 0.05  # bfloat16 rounding: not bit-identical, not far
    step = torch_reference.build_train_step(cfg, net, autocast_dtype=torch.bfloat16)
    assert np.isfinite(step(x, torch.rand(1, 10, 1, 64, 64)))
