"""The same-wall-clock PyTorch peer (bench/torch_openstl.py): OpenSTL's procedure, no look-ahead at test
time, a loss that falls (skipped without PyTorch: ``pip install -r bench/requirements.txt``)."""
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench import torch_openstl  # noqa: E402


def _model():
    torch.manual_seed(0)
    return torch_openstl.StackedConvLSTM(channels=1, hidden=[8, 8], kernel=3, patch=4)


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
        assert torch.equal(model(frames, 10, zeros), model(frames, 10))


def test_schedules_follow_openstl():
    lr = torch_openstl.one_cycle_lr
    assert lr(0.0, 1e-3) == pytest.approx(1e-3 / 25)
    assert lr(0.3, 1e-3) == pytest.approx(1e-3)
    assert lr(1.0, 1e-3) == pytest.approx(1e-3 / 25 / 1e4)
    assert lr(0.15, 1e-3) < lr(0.25, 1e-3) and lr(0.5, 1e-3) > lr(0.9, 1e-3)
    assert torch_openstl.sampling_eta(0.0) == 1.0
    assert torch_openstl.sampling_eta(0.2) == pytest.approx(0.5)
    assert torch_openstl.sampling_eta(0.5) == 0.0


def _moving_bars(batch=4):
    """(B, 20, 1, 16, 16): a bright column moving one pixel per frame (predictable, unlike noise)."""
    frames = np.zeros((batch, 20, 1, 16, 16), np.float32)
    for b in range(batch):
        for t in range(20):
            frames[b, t, 0, :, (t + 3 * b) % 16] = 1
    return torch.from_numpy(frames)


def test_the_loss_falls_on_a_fixed_batch():
    torch.set_num_threads(2)
    model, frames = _model(), _moving_bars()
    args = torch_openstl.parse(["--autocast", "none", "--minutes", "1"])
    cfg = type("Cfg", (), {"input_frames": 10, "output_frames": 10})()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    losses = [torch_openstl.train_step(model, optimizer, frames, cfg, args, 0.5, rng) for _ in range(40)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_a_tiny_run_prints_one_finite_line_per_evaluation(capsys):
    torch_openstl.main(["--minutes", "0.1", "--eval_at", "0.05", "--test_sequences", "4"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        m = re.fullmatch(r"minutes: ([\d.]+) steps: (\d+) mse: ([\d.]+) below_zeros: (-?[\d.]+)% ssim: ([\d.]+) "
                         r"mae: [\d.]+ ssim_openstl: [\d.]+ psnr: [\d.]+ \(zeros mse ([\d.]+), copy_last mse ([\d.]+)\)", line)
        assert m, line
        assert float(m.group(3)) > 0 and float(m.group(6)) > 0
    steps = [int(re.search(r"steps: (\d+)", line).group(1)) for line in lines]
    assert steps[1] >= max(1, steps[0])  # the clock (not a step count) ends training


@pytest.mark.parametrize("argv", [["--eval_at", "20"], ["--eval_at", "x"], ["--minutes", "0"]])
def test_bad_options_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as info:
        torch_openstl.parse(argv)
    assert info.value.code == 2
    assert "torch_openstl" in capsys.readouterr().err
