"""Training losses: the differentiable SSIM equals the reported metric, and the configured
terms are the ones applied."""
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from src.config import load_config


def _sparse_frames(rng, count, size=32):
    """Mostly black frames with a few bright, soft-edged squares (like digits on black)."""
    frames = np.zeros((count, 1, size, size), np.float32)
    for frame in frames:
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, size - 8, 2)
            frame[0, y:y + rng.integers(3, 8), x:x + rng.integers(3, 8)] = rng.uniform(0.5, 1.0)
    return frames


def _pairs(seed=0):
    """(pred, target) pairs covering the cases that matter: haze, shifted digits, noise, blank."""
    rng = np.random.default_rng(seed)
    target = _sparse_frames(rng, 6)
    pred = np.stack([
        target[0] + 0.02,                                   # uniform haze
        np.roll(target[1], 3, axis=-1),                     # digit moved
        np.clip(target[2] + rng.normal(0, 0.1, target[2].shape), 0, 1),  # noise
        np.zeros_like(target[3]),                           # predict zeros
        rng.random(target[4].shape),                        # garbage
        target[5],                                          # perfect
    ]).astype(np.float32)
    return np.clip(pred, 0, 1), target


def test_ssim_matches_scikit_image():
    import mindspore as ms
    from src.training.losses import ssim_per_frame

    pred, target = _pairs()
    got = ssim_per_frame(ms.Tensor(pred), ms.Tensor(target)).asnumpy()  # (6,)
    expected = [structural_similarity(p[0].astype(np.float64), t[0].astype(np.float64), data_range=1.0)
                for p, t in zip(pred, target)]
    assert len(set(np.round(expected, 3))) == len(expected)  # the cases really differ
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_ssim_loss_is_zero_for_a_perfect_prediction_and_falls_under_gradient_descent():
    import mindspore as ms
    from mindspore import ops
    from src.training.losses import ssim_loss

    rng = np.random.default_rng(1)
    target = ms.Tensor(_sparse_frames(rng, 4).reshape(2, 2, 1, 32, 32))  # (B, T, 1, H, W)
    assert abs(float(ssim_loss(target, target).asnumpy())) < 1e-6
    logits = ms.Parameter(ms.Tensor(np.full((2, 2, 1, 32, 32), -1.0, np.float32)), name="logits")
    grad_fn = ms.value_and_grad(lambda z: ssim_loss(ops.sigmoid(z), target))
    first, grad = grad_fn(logits)
    assert np.isfinite(grad.asnumpy()).all()
    for _ in range(30):
        value, grad = grad_fn(logits)
        logits.set_data(logits - 2000.0 * grad)  # SSIM gradients per pixel are tiny (mean over many windows)
    assert float(value.asnumpy()) < float(first.asnumpy()) - 0.2  # measured: 0.996 -> 0.68


class _FixedLogits:
    """A stand-in for the trained forward cell: its logits are given."""

    def __init__(self, logits):
        self.logits = logits

    def __call__(self, inputs, targets=None, mask=None):
        return self.logits


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_ssim_weight_adds_exactly_its_term(loss):
    import mindspore as ms
    from mindspore import ops
    from src.training.losses import make_loss_fn, pixel_loss, ssim_loss

    rng = np.random.default_rng(2)
    target = ms.Tensor(_sparse_frames(rng, 4).reshape(2, 2, 1, 32, 32))
    logits = ms.Tensor(rng.normal(-2, 1, (2, 2, 1, 32, 32)).astype(np.float32))
    net = _FixedLogits(logits)
    plain = make_loss_fn(net, load_config(loss=loss, ssim_weight=0.0))(None, target, None)
    weighted = make_loss_fn(net, load_config(loss=loss, ssim_weight=0.5))(None, target, None)
    assert float(plain.asnumpy()) == pytest.approx(float(pixel_loss(logits, target, loss).asnumpy()), rel=1e-6)
    ssim_term = float(ssim_loss(ops.sigmoid(logits), target).asnumpy())
    assert ssim_term > 0.1
    assert float(weighted.asnumpy()) == pytest.approx(float(plain.asnumpy()) + 0.5 * ssim_term, rel=1e-5)


def test_negative_ssim_weight_is_a_config_error():
    from src.errors import ConfigError

    with pytest.raises(ConfigError, match="ssim_weight"):
        load_config(["--ssim_weight", "-1"])


def test_balanced_loss_against_numpy_including_targets_on_a_threshold():
    """dBZ data (own sequences mapped from [-10, 60]) with loss_thresholds 20/35 dBZ and weights
    1/2/5: targets exactly on 20 and 35 dBZ take the higher class."""
    import mindspore as ms
    from src.training.losses import make_loss_fn

    rng = np.random.default_rng(4)
    dbz = rng.choice([-10.0, 10.0, 20.0, 27.0, 35.0, 52.0], size=(2, 3, 1, 8, 8)).astype(np.float32)
    target = ((dbz + 10.0) / 70.0).astype(np.float32)  # the training normalisation's arithmetic
    logits = rng.normal(0, 1.5, target.shape).astype(np.float32)
    cfg = load_config(["--dataset", "sequences", "--data_path", "x.npy", "--data_scale", "minmax", "--data_min", "-10",
                       "--data_max", "60", "--data_dtype", "float32", "--loss", "balanced", "--loss_thresholds",
                       "[20,35]", "--loss_weights", "[1,2,5]", "--ssim_weight", "0"])
    got = float(make_loss_fn(_FixedLogits(ms.Tensor(logits)), cfg)(None, ms.Tensor(target), None).asnumpy())
    weight = np.where(dbz >= 35, 5.0, np.where(dbz >= 20, 2.0, 1.0))
    err = 1 / (1 + np.exp(-logits.astype(np.float64))) - target
    assert got == pytest.approx(float(np.mean(weight * (err ** 2 + np.abs(err)))), rel=1e-5)
    plain = load_config(["--dataset", "sequences", "--data_path", "x.npy", "--data_scale", "minmax", "--data_min",
                         "-10", "--data_max", "60", "--data_dtype", "float32", "--loss", "balanced"])
    from src.training.losses import pixel_classes

    thresholds, weights = pixel_classes(plain)  # HKO-7's classes for dBZ data
    assert weights == [1, 1, 2, 5, 10, 30] and thresholds[0] == pytest.approx((12.98 + 10) / 70, abs=1e-4)


def test_balanced_loss_needs_classes_for_data_that_are_not_dbz():
    from src.errors import ConfigError

    with pytest.raises(ConfigError, match="balanced needs loss_thresholds"):
        load_config(["--loss", "balanced"])
    assert load_config(["--loss", "balanced", "--loss_thresholds", "[0.2,0.4,0.6,0.8,0.9]"]).loss == "balanced"


@pytest.mark.parametrize("activation", ["linear", "sigmoid"])
def test_loss_on_all_frames_compares_every_next_frame(activation):
    """loss_frames all: the logits of frames 1 .. T-1 against inputs[:, 1:] followed by the targets; a linear
    output is its own frame (no sigmoid)."""
    import mindspore as ms
    from src.training.losses import make_loss_fn

    rng = np.random.default_rng(7)
    seq = rng.random((2, 5, 1, 8, 8)).astype(np.float32)  # T_in 3, T_out 2
    logits = rng.normal(0, 1, (2, 4, 1, 8, 8)).astype(np.float32)
    cfg = load_config(arch="stacked", input_frames=3, output_frames=2, image_size=32, loss="mse", ssim_weight=0.0,
                      loss_frames="all", output_activation=activation)
    got = float(make_loss_fn(_FixedLogits(ms.Tensor(logits)), cfg)(ms.Tensor(seq[:, :3]), ms.Tensor(seq[:, 3:]),
                                                                    None).asnumpy())
    frames = logits if activation == "linear" else 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert got == pytest.approx(float(np.mean((frames - seq[:, 1:]) ** 2)), rel=1e-5)


def test_loss_on_all_frames_takes_the_target_channels_of_the_observed_frames():
    """target_channels [0, 2] of 3: the data hold the targets' channels 0 and 2 only; the observed next frames
    the loss also compares with are cut to the same channels."""
    import mindspore as ms
    from src.training.losses import make_loss_fn

    rng = np.random.default_rng(8)
    seq = rng.random((2, 5, 3, 8, 8)).astype(np.float32)  # T_in 3, T_out 2, 3 channels
    logits = rng.normal(0, 1, (2, 4, 2, 8, 8)).astype(np.float32)  # (B, T-1, C_out, H, W)
    cfg = load_config(dataset="sequences", channels=3, frame_height=8, frame_width=8, arch="paper", patch_size=4,
                      input_frames=3, output_frames=2, loss="mse", ssim_weight=0.0, loss_frames="all",
                      target_channels=[0, 2])
    got = float(make_loss_fn(_FixedLogits(ms.Tensor(logits)), cfg)(ms.Tensor(seq[:, :3]),
                                                                    ms.Tensor(seq[:, 3:, [0, 2]]), None).asnumpy())
    frames = 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert got == pytest.approx(float(np.mean((frames - seq[:, 1:, [0, 2]]) ** 2)), rel=1e-5)
