"""The PyTorch peer (bench/torch_openstl.py): OpenSTL's schedules against PyTorch's OneCycleLR and
OpenSTL's formulas, its network variants, scheduled sampling masks, no look-ahead at test time, a loss
that falls, and whole tiny runs in step and clock mode (skipped without PyTorch:
``pip install -r bench/requirements.txt``)."""
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench import torch_openstl  # noqa: E402

TINY = ["--hidden_channels", "4,4", "--batch_size", "2", "--test_sequences", "2"]


def _model(variant="openstl"):
    torch.manual_seed(0)
    return torch_openstl.StackedConvLSTM(channels=1, hidden=[8, 8], kernel=3, patch=4, variant=variant)


def _frames(seed=0, batch=2):
    return torch.from_numpy(np.random.default_rng(seed).random((batch, 20, 1, 16, 16), dtype=np.float32))


def test_test_time_predictions_never_see_the_target_frames():
    model, frames = _model(), _frames()
    changed = frames.clone()
    changed[:, 10:] = torch.rand_like(changed[:, 10:])
    with torch.no_grad():
        a, b = model(frames, 10), model(changed, 10)  # (B, 19, C, H, W)
    assert a.shape == (2, 19, 1, 16, 16)
    assert torch.equal(a, b)


def test_scheduled_sampling_feeds_the_true_frame_where_the_mask_says():
    model, frames = _model(), _frames()
    changed = frames.clone()
    changed[:, 12] += 0.5  # fed at step 12, mask column 12 - 10 = 2
    ones, zeros = torch.ones(2, 9), torch.zeros(2, 9)
    with torch.no_grad():
        assert not torch.equal(model(frames, 10, ones)[:, 12:], model(changed, 10, ones)[:, 12:])
        assert torch.equal(model(frames, 10, zeros), model(changed, 10, zeros))


def test_an_all_ones_mask_is_teacher_forcing_and_all_zeros_the_own_rollout():
    model, frames = _model(), _frames()
    with torch.no_grad():
        teacher_forced = model(frames, 19)  # the true frame fed at every one of the 19 steps
        own_rollout = model(frames, 10)  # its own prediction fed from step 10 on (test time)
        assert not torch.equal(teacher_forced, own_rollout)
        assert torch.equal(model(frames, 10, torch.ones(2, 9)), teacher_forced)
        assert torch.equal(model(frames, 10, torch.zeros(2, 9)), own_rollout)


def test_one_cycle_by_step_equals_pytorchs_one_cycle_lr_step_by_step():
    for total, max_lr in ((7, 1e-3), (40, 5e-4), (2000, 5e-4)):
        weight = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.Adam([weight], lr=max_lr)
        reference = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total,
                                                        final_div_factor=1e4)
        for step in range(total):
            lr, beta1 = torch_openstl.one_cycle_at_step(step, total, max_lr)
            group = optimizer.param_groups[0]
            assert lr == pytest.approx(group["lr"], rel=1e-9, abs=1e-15), (total, step)
            assert beta1 == pytest.approx(group["betas"][0], rel=1e-9), (total, step)
            optimizer.step()
            reference.step()


def test_one_cycle_by_step_at_its_corners():
    lr = torch_openstl.one_cycle_at_step
    assert lr(0, 2000, 5e-4) == pytest.approx((5e-4 / 25, 0.95))
    assert lr(599, 2000, 5e-4) == pytest.approx((5e-4, 0.85))  # the peak at 0.3 N - 1
    assert lr(1999, 2000, 5e-4) == pytest.approx((5e-4 / 25 / 1e4, 0.95))
    assert lr(0.3 * 2000 - 1 + 0.5 * 1400, 2000, 5e-4)[0] == pytest.approx((5e-4 + 5e-4 / 25 / 1e4) / 2)


def test_one_cycle_by_fraction_for_the_clock():
    lr = torch_openstl.one_cycle_at_fraction
    assert lr(0.0, 1e-3) == pytest.approx((1e-3 / 25, 0.95))
    assert lr(0.3, 1e-3) == pytest.approx((1e-3, 0.85))
    assert lr(1.0, 1e-3) == pytest.approx((1e-3 / 25 / 1e4, 0.95))
    assert lr(1.5, 1e-3) == lr(1.0, 1e-3)
    assert lr(0.15, 1e-3)[0] < lr(0.25, 1e-3)[0] and lr(0.5, 1e-3)[0] > lr(0.9, 1e-3)[0]


def test_sampling_probability_by_step_follows_openstl():
    eta = torch_openstl.sampling_eta_at_step
    total = 2000  # stop at 0.4 N = 800
    for step in (0, 1, 399, 798):
        assert eta(step, total) == pytest.approx(1 - (step + 1) / 800)
    assert eta(799, total) == pytest.approx(0.0, abs=1e-12)
    assert eta(800, total) == 0.0 and eta(1999, total) == 0.0
    # OpenSTL's own bookkeeping: eta starts at 1 and loses 1/stop before each draw while step < stop
    running, stop = 1.0, 0.4 * 50
    for step in range(50):
        running = running - 1 / stop if step < stop else 0.0
        assert max(running, 0.0) == pytest.approx(eta(step, 50), abs=1e-12)
    assert torch_openstl.sampling_eta_at_fraction(0.2) == pytest.approx(0.5)
    assert torch_openstl.sampling_eta_at_fraction(0.5) == 0.0


def test_sampling_masks_draw_once_per_sequence_and_frame_at_eta():
    generator = torch.Generator().manual_seed(3)
    masks = torch.stack([torch_openstl.sampling_mask(8, 9, 0.3, generator) for _ in range(200)])  # (200, 8, 9)
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert masks.mean().item() == pytest.approx(0.3, abs=0.02)
    assert torch_openstl.sampling_mask(8, 9, 0.0, generator).sum() == 0
    assert torch_openstl.sampling_mask(8, 9, 1.0, generator).sum() == 72


def test_the_openstl_variant_has_no_bias_and_no_forget_bias():
    openstl, repo = _model("openstl"), _model("repo")
    assert not [name for name, _ in openstl.named_parameters() if name.endswith("bias")]
    assert sorted(name for name, _ in repo.named_parameters() if name.endswith("bias")) == \
        ["cells.0.conv_h.bias", "cells.0.conv_x.bias", "cells.1.conv_h.bias", "cells.1.conv_x.bias"]
    cell = openstl.cells[0]
    x, h, c = torch.rand(1, 16, 4, 4), torch.rand(1, 8, 4, 4), torch.rand(1, 8, 4, 4)
    with torch.no_grad():
        i, f, g, o = torch.split(cell.conv_x(x) + cell.conv_h(h), 8, dim=1)
        expected_c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # no forget bias
        h_new, c_new = cell(x, h, c)
    assert torch.allclose(c_new, expected_c) and torch.allclose(h_new, torch.sigmoid(o) * torch.tanh(expected_c))


def _moving_bars(batch=4):
    """(B, 20, 1, 16, 16): a bright column moving one pixel per frame (predictable, unlike noise)."""
    frames = np.zeros((batch, 20, 1, 16, 16), np.float32)
    for b in range(batch):
        for t in range(20):
            frames[b, t, 0, :, (t + 3 * b) % 16] = 1
    return torch.from_numpy(frames)


def test_the_loss_falls_on_a_fixed_batch():
    torch.set_num_threads(2)
    model, frames = _model("repo"), _moving_bars()
    args = torch_openstl.parse(["--steps", "40"])
    cfg = type("Cfg", (), {"input_frames": 10, "output_frames": 10})()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    losses = [torch_openstl.train_step(model, optimizer, frames, cfg, args, 0.5, generator) for _ in range(40)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


LINE = re.compile(r"steps: (\d+) mse: ([\d.]+) mae: [\d.]+ ssim: [\d.]+ psnr: [\d.]+ below_zeros: (-?[\d.]+)% "
                  r"s_per_step: ([\d.]+) ssim_openstl: [\d.]+ minutes: [\d.]+ \(zeros mse ([\d.]+), copy_last mse "
                  r"[\d.]+\) variant: (\w+) autocast: (\w+) seed: (\d+) cycle_momentum: (on|off) max_lr: ([\d.e-]+)")


def _run(capsys, argv, progress_steps=()):
    torch_openstl.main(argv)
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    matches = [LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    progress = [int(re.match(r"step (\d+): loss [\d.]+ lr [\d.e-]+ eta [\d.]+ s_per_step [\d.]+$", line).group(1))
                for line in captured.err.strip().splitlines()]
    assert progress == list(progress_steps)
    return matches


def test_step_mode_trains_exactly_the_steps_with_openstls_defaults(capsys):
    first = _run(capsys, ["--steps", "3", "--eval_at", "2", "--seed", "5", "--log_every", "1"] + TINY, (1, 2, 3))
    assert [int(m.group(1)) for m in first] == [2, 3]
    assert all(float(m.group(2)) > 0 and float(m.group(4)) > 0 for m in first)
    assert first[-1].group(6, 7, 8, 9, 10) == ("openstl", "none", "5", "on", "0.0005")
    again = _run(capsys, ["--steps", "3", "--seed", "5"] + TINY)  # seed: same data, weights and masks
    assert again[0].group(2) == first[-1].group(2)
    other = _run(capsys, ["--steps", "3", "--seed", "6"] + TINY)
    assert other[0].group(2) != first[-1].group(2)


def test_the_seed_and_widths_reach_the_config():
    args = torch_openstl.parse(["--steps", "3", "--seed", "7", "--hidden_channels", "16,8", "--kernel_size", "5",
                                "--patch_size", "2", "--batch_size", "3"])
    cfg = torch_openstl.run_config(args)
    assert (cfg.seed, cfg.hidden_channels, cfg.kernel_size, cfg.patch_size, cfg.batch_size) == (7, [16, 8], 5, 2, 3)
    default = torch_openstl.run_config(torch_openstl.parse(["--steps", "3"]))
    assert (default.seed, default.hidden_channels, default.batch_size) == (1, [32, 32], 8)  # configs/cpu_small.yaml


def test_clock_mode_keeps_the_earlier_defaults_and_ends_on_the_clock(capsys):
    lines = _run(capsys, ["--minutes", "0.03", "--eval_at", "0.01"] + TINY)
    assert len(lines) == 2
    assert lines[-1].group(6, 7, 9, 10) == ("repo", "bf16", "off", "0.002")
    steps = [int(m.group(1)) for m in lines]
    assert steps[1] >= max(1, steps[0])


@pytest.mark.parametrize("argv", [["--eval_at", "20"], ["--eval_at", "x"], ["--minutes", "0"],
                                  ["--steps", "0"], ["--steps", "10", "--minutes", "1"],
                                  ["--steps", "10", "--eval_at", "10"], ["--steps", "10", "--eval_at", "2.5"]])
def test_bad_options_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as info:
        torch_openstl.parse(argv)
    assert info.value.code == 2
    assert "torch_openstl" in capsys.readouterr().err


def test_a_bad_config_value_is_one_error_line():
    with pytest.raises(SystemExit) as info:
        torch_openstl.main(["--steps", "1", "--kernel_size", "4"])
    assert str(info.value).startswith("torch_openstl.py: error: ") and "kernel_size" in str(info.value)
    assert "\n" not in str(info.value)
