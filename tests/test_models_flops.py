"""Parameter and cost counts: agreement with the built networks, reference figures, command line."""
import os
import subprocess
import sys

import numpy as np
import pytest

from src.config import load_config
from src.models import flops
from src.models.network import build_network

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cfg_of(**overrides):
    """configs/cpu.yaml (64x64, 10 -> 10 frames, paper 128-64-64 5x5) with overrides."""
    return load_config([], config_path=os.path.join(REPO_ROOT, "configs", "cpu.yaml"), **overrides)


@pytest.mark.parametrize("overrides", [
    dict(arch="zoo"),
    dict(arch="zoo", peephole=True, image_size=32),
    dict(arch="paper"),
    dict(arch="paper", hidden_channels=[64, 64], kernel_size=3),
    dict(arch="paper", hidden_channels=[8, 4, 6], kernel_size=3, peephole=True),
    dict(arch="paper", hidden_channels=[16], group_norm=True, patch_size=2, image_size=32),
    dict(arch="paper", hidden_channels=[8, 4], kernel_size=3, forecaster_input="prediction"),
])
def test_counted_parameters_equal_the_built_network(overrides):
    cfg = cfg_of(**overrides)
    assert flops.count_parameters(build_network(cfg)) == flops.network_cost(cfg)["params"]


def test_zoo_reference_figures():
    cost = flops.network_cost(cfg_of(arch="zoo"))
    assert cost["params"] == 8_108_577  # "about 8.1 M"
    # 104.60 GMAC: transposed convolutions per input pixel, no state-to-state convolution at the
    # encoder's first (zero-state) step. The quoted ~113 GMAC counts the transposed convolutions
    # at the output resolution (4x: 3 * (0.38 + 1.51) GMAC more) and the skipped convolutions.
    assert 104.55e9 < cost["forward_macs"] < 104.65e9
    deconv_macs = sum(r.macs for r in flops.zoo_layers(cfg_of(arch="zoo")) if r.kind == "deconv")
    skipped = 64 * 64 * 64 * 256 * 25 + 32 * 32 * 96 * 384 * 25 + 16 * 16 * 96 * 384 * 25  # one h-conv per encoder cell
    assert 112.5e9 < cost["forward_macs"] + 3 * deconv_macs + skipped < 113.5e9


def test_paper_reference_figures():
    cost = flops.network_cost(cfg_of(arch="paper", hidden_channels=[128, 64, 64], kernel_size=5))
    assert 7.55e6 < cost["params"] < 7.62e6  # paper: "about 7.6 M"
    # every step: 20 steps x 256 px x 25 x 4C x (C_in + C) summed over the six cells, minus the
    # first-step h-convolution of the three encoder cells
    every_step = 256 * 25 * (10 * (16 + 128) * 512 + 10 * (128 + 64) * 256 + 10 * (64 + 64) * 256
                             + 10 * 128 * 512 + 10 * (128 + 64) * 256 + 10 * (64 + 64) * 256)
    skipped = 256 * 25 * (128 * 512 + 64 * 256 + 64 * 256)
    output_conv = 10 * 256 * 256 * 16
    assert cost["forward_macs"] == every_step - skipped + output_conv  # 18.78 GMAC
    with_peepholes = flops.network_cost(cfg_of(arch="paper", hidden_channels=[128, 64, 64], kernel_size=5,
                                               peephole=True))["params"]
    assert with_peepholes - cost["params"] == 2 * 3 * (128 + 64 + 64) * 16 * 16


def test_cell_cost_by_hand():
    row = flops.cell_cost("c", 16, 64, 5, 64, 10)
    assert row.params == (16 + 64) * 256 * 25 + 256
    assert row.macs == 10 * 64 * 64 * 80 * 256 * 25
    first_from_zeros = flops.cell_cost("c", 16, 64, 5, 64, 10, zero_initial_state=True)
    assert first_from_zeros.params == row.params
    assert first_from_zeros.macs == 64 * 64 * (10 * 16 + 9 * 64) * 256 * 25
    assert flops.cell_cost("c", 0, 64, 5, 64, 10).macs == 10 * 64 * 64 * 64 * 256 * 25  # no input conv


def test_flops_conventions_and_scaling_with_frames():
    base = flops.network_cost(cfg_of(arch="paper", input_frames=10, output_frames=10))
    assert base["forward_flops"] == 2 * base["forward_macs"]
    assert base["train_step_flops"] == 3 * base["forward_flops"]
    # the same 1x64x64 frames as own sequences: no 20-frame cap of mnist_test_seq.npy
    longer = flops.network_cost(cfg_of(arch="paper", input_frames=20, output_frames=20, dataset="sequences",
                                       channels=1, frame_height=64, frame_width=64))
    # twice the steps, but still only one skipped h-convolution per encoder cell (16x16, 5x5)
    one_h_conv_each = 256 * 25 * (128 * 512 + 64 * 256 + 64 * 256)
    assert longer["forward_macs"] == 2 * base["forward_macs"] + one_h_conv_each
    assert longer["params"] == base["params"]
    assert longer["activation_bytes_per_sequence"] > 1.9 * base["activation_bytes_per_sequence"]
    zoo = flops.network_cost(cfg_of(arch="zoo"))
    assert zoo["activation_bytes_per_sequence"] > 5 * base["activation_bytes_per_sequence"]


def test_command_line_prints_the_layer_table():
    out = subprocess.run([sys.executable, "-m", "src.models.flops", "--config_path",
                          os.path.join(REPO_ROOT, "configs", "cpu.yaml"), "--arch", "zoo"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "| layer | in -> out channels | kernel | resolution | steps | params | MACs/sequence |" in out.stdout
    assert "| enc_cell1 | 16 -> 64 | 5x5 | 64 | 10 | 512,512 |" in out.stdout
    assert "8,108,577" in out.stdout and "104.60 GMAC" in out.stdout


def test_command_line_rejects_a_bad_key():
    out = subprocess.run([sys.executable, "-m", "src.models.flops", "--archh", "zoo"], cwd=REPO_ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "archh" in out.stderr and "Traceback" not in out.stderr


class _ConvMacCounter:
    """Records the MACs of every Conv2d / Conv2dTranspose call while installed (PYNATIVE mode)."""

    def __init__(self, monkeypatch):
        from mindspore import nn

        self.macs = []
        conv, deconv = nn.Conv2d.construct, nn.Conv2dTranspose.construct

        def counted_conv(cell, x):
            y = conv(cell, x)
            self.macs.append(self._macs(cell, out_pixels=y.shape[0] * y.shape[2] * y.shape[3], cin=x.shape[1],
                                        cout=y.shape[1]))
            return y

        def counted_deconv(cell, x):  # real work: every INPUT pixel meets the whole kernel
            y = deconv(cell, x)
            self.macs.append(self._macs(cell, out_pixels=x.shape[0] * x.shape[2] * x.shape[3], cin=x.shape[1],
                                        cout=y.shape[1]))
            return y

        monkeypatch.setattr(nn.Conv2d, "construct", counted_conv)
        monkeypatch.setattr(nn.Conv2dTranspose, "construct", counted_deconv)

    @staticmethod
    def _macs(cell, out_pixels, cin, cout):
        assert cell.group == 1
        kh, kw = cell.kernel_size
        return out_pixels * cin * cout * kh * kw


@pytest.mark.parametrize("overrides", [
    dict(arch="zoo"),
    dict(arch="paper", hidden_channels=[8, 4], kernel_size=3),
    dict(arch="paper", hidden_channels=[8, 4], kernel_size=3, forecaster_input="prediction"),
])
def test_counted_macs_equal_the_convolutions_a_forward_runs(overrides, monkeypatch, pynative_mode):
    import mindspore as ms

    cfg = cfg_of(image_size=32, input_frames=3, output_frames=2, **overrides)
    net = build_network(cfg)
    counter = _ConvMacCounter(monkeypatch)
    net(ms.Tensor(np.zeros((1, 3, 1, 32, 32), np.float32)))  # one sequence
    assert counter.macs, "no convolution was recorded"
    assert sum(counter.macs) == flops.network_cost(cfg)["forward_macs"]
