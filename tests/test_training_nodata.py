"""nodata in training: every loss (mse, bce, balanced, + the SSIM term) is a mean over the target pixels with data,
checked against NumPy; a mask of ones gives today's loss bit for bit; the compiled step takes the mask as a
tensor of fixed shape, under mixed precision O2 too."""
import numpy as np
import pytest

from src.config import load_config

SEQ = ["--dataset", "sequences", "--data_path", "x.npy", "--data_scale", "minmax", "--data_min", "-10", "--data_max",
       "60", "--data_dtype", "float32"]


class _FixedLogits:
    def __init__(self, logits):
        self.logits = logits

    def __call__(self, inputs, targets=None, mask=None):
        return self.logits


def _case(seed=0, shape=(2, 3, 1, 16, 16)):
    """(logits, targets with 0 where masked, valid 0/1) float32; about a third of the pixels without data."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, shape).astype(np.float32)
    valid = (rng.random(shape) > 0.35).astype(np.float32)
    targets = (rng.random(shape) * valid).astype(np.float32)
    return logits, targets, valid


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def _loss(cfg, logits, targets, valid=None):
    import mindspore as ms
    from src.training.losses import make_loss_fn

    fn = make_loss_fn(_FixedLogits(ms.Tensor(logits)), cfg)
    args = (None, ms.Tensor(targets), None) + (() if valid is None else (ms.Tensor(valid),))
    return float(fn(*args).asnumpy())


def _numpy_pixel_loss(name, logits, targets, valid):
    frames = _sigmoid(logits)
    if name == "mse":
        per_pixel = (frames - targets) ** 2
    else:  # bce on logits
        per_pixel = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits.astype(np.float64))))
    return float((per_pixel * valid).sum() / valid.sum())


@pytest.mark.parametrize("name", ["mse", "bce"])
def test_masked_pixel_losses_against_numpy(name):
    logits, targets, valid = _case(1)
    cfg = load_config(SEQ + ["--loss", name, "--ssim_weight", "0", "--nodata", "nan"])
    got = _loss(cfg, logits, targets, valid)
    assert got == pytest.approx(_numpy_pixel_loss(name, logits, targets, valid), rel=1e-5)
    unmasked = _numpy_pixel_loss(name, logits, targets, np.ones_like(valid))
    assert abs(got - unmasked) > 1e-3  # the mask matters here


def test_masked_balanced_loss_against_numpy():
    rng = np.random.default_rng(4)
    dbz = rng.choice([-10.0, 10.0, 20.0, 27.0, 35.0, 52.0], size=(2, 3, 1, 8, 8)).astype(np.float32)
    targets = ((dbz + 10.0) / 70.0).astype(np.float32)
    valid = (rng.random(dbz.shape) > 0.3).astype(np.float32)
    targets *= valid
    logits = rng.normal(0, 1.5, dbz.shape).astype(np.float32)
    cfg = load_config(SEQ + ["--loss", "balanced", "--loss_thresholds", "[20,35]", "--loss_weights", "[1,2,5]",
                             "--ssim_weight", "0", "--nodata", "[nan,-9999]"])
    got = _loss(cfg, logits, targets, valid)
    weight = np.where(dbz >= 35, 5.0, np.where(dbz >= 20, 2.0, 1.0))
    err = _sigmoid(logits) - targets
    expected = (valid * weight * (err ** 2 + np.abs(err))).sum() / valid.sum()
    assert got == pytest.approx(float(expected), rel=1e-5)


def test_ssim_term_compares_both_frames_set_to_the_background_at_no_data_pixels():
    import mindspore as ms
    from src.training.losses import ssim_loss

    logits, targets, valid = _case(2, (1, 2, 1, 16, 16))
    plain = load_config(SEQ + ["--loss", "mse", "--ssim_weight", "0", "--nodata", "nan"])
    weighted = load_config(SEQ + ["--loss", "mse", "--ssim_weight", "0.5", "--nodata", "nan"])
    pixel = _loss(plain, logits, targets, valid)
    frames = (_sigmoid(logits) * valid).astype(np.float32)  # prediction set to 0 where there is no data
    term = float(ssim_loss(ms.Tensor(frames), ms.Tensor(targets * valid)).asnumpy())
    assert _loss(weighted, logits, targets, valid) == pytest.approx(pixel + 0.5 * term, rel=1e-5)
    changed = np.where(valid > 0, targets, 0.9).astype(np.float32)  # other truth at no-data pixels only
    assert _loss(weighted, logits, changed * valid, valid) == _loss(weighted, logits, targets, valid)


@pytest.mark.parametrize("name, extra", [("mse", []), ("bce", []), ("mse", ["--ssim_weight", "0.3"]),
                                         ("balanced", ["--ssim_weight", "0.2"])])
def test_a_mask_of_ones_gives_todays_loss_bit_for_bit(name, extra):
    logits, targets, _ = _case(3)
    base = SEQ + ["--loss", name] + (extra or ["--ssim_weight", "0"])
    today = _loss(load_config(base), logits, targets)
    masked = _loss(load_config(base + ["--nodata", "nan"]), logits, targets, np.ones_like(targets))
    assert masked == today  # bit for bit


def _step(amp_level, nodata, seed=0):
    import mindspore as ms
    from src.models.encoder_forecaster import PaperEncoderForecaster
    from src.models.mixed_precision import training_forward
    from src.training.step import build_optimizer, build_train_step

    ms.set_seed(seed)
    net = PaperEncoderForecaster(2, 2, 16, hidden_channels=(8,), kernel_size=3, patch_size=4, output_bias=-1.0)
    args = SEQ + ["--input_frames", "2", "--output_frames", "2", "--loss", "mse", "--ssim_weight", "0.1",
                  "--amp_level", amp_level, "--amp_on_cpu", "true", "--mode", "graph", "--lr", "0.01"]
    cfg = load_config(args + (["--nodata", "nan"] if nodata else []))
    optimizer = build_optimizer(cfg, net)
    return net, build_train_step(cfg, training_forward(net, amp_level), optimizer)


@pytest.mark.parametrize("amp_level", ["O0", "O2"])
def test_the_compiled_step_takes_the_mask_as_a_tensor_and_ignores_truth_without_data(amp_level):
    """Two steps with different masks, then a step whose truth differs only where there is no data: the same
    loss as the step with the original truth (both from the same weights)."""
    import mindspore as ms

    rng = np.random.default_rng(5)
    inputs = ms.Tensor(rng.random((2, 2, 1, 16, 16)).astype(np.float32))
    targets = rng.random((2, 2, 1, 16, 16)).astype(np.float32)
    valid = (rng.random(targets.shape) > 0.4).astype(np.float32)
    lr = ms.Tensor(0.0, ms.float32)  # no update: every call sees the same weights
    _, step = _step(amp_level, nodata=True)
    losses = []
    for v in (valid, 1.0 - valid, valid):
        loss, finite = step(inputs, ms.Tensor(targets * v), lr, valid=ms.Tensor(v))
        assert bool(finite.asnumpy()) and np.isfinite(float(loss.asnumpy()))
        losses.append(float(loss.asnumpy()))
    assert losses[0] == losses[2] and losses[0] != losses[1]
    other = np.where(valid > 0, targets, rng.random(targets.shape)).astype(np.float32)
    loss, _ = step(inputs, ms.Tensor(other * valid), lr, valid=ms.Tensor(valid))
    assert float(loss.asnumpy()) == losses[0]
    loss, _ = step(inputs, ms.Tensor(targets), lr)  # no valid given: every pixel
    plain_loss, _ = _step(amp_level, nodata=False)[1](inputs, ms.Tensor(targets), lr)
    assert float(loss.asnumpy()) == float(plain_loss.asnumpy())


def test_nodata_keys_are_checked_in_one_line():
    from src.errors import ConfigError

    assert load_config(SEQ + ["--nodata", "[-9999,nan,-9999]"]).nodata == ["nan", "-9999"]
    assert load_config(SEQ).nodata == []
    with pytest.raises(ConfigError, match="'nodata'.*dataset sequences"):
        load_config(["--nodata", "nan"])
    with pytest.raises(ConfigError, match="loss_frames all is not supported"):
        load_config(SEQ + ["--nodata", "nan", "--loss_frames", "all", "--arch", "stacked"])
    with pytest.raises(ConfigError, match="nan or finite"):
        load_config(SEQ + ["--nodata", "inf"])
    with pytest.raises(ConfigError, match="expected nodata_list"):
        load_config(SEQ + ["--nodata", "none"])
