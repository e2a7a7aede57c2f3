"""Training losses on the logits: ``cfg.loss`` mse | bce | balanced (HKO-7's B-MSE + B-MAE, Shi et al. 2017:
errors weighted by the truth's intensity class), + ``ssim_weight`` x (1 - SSIM): pixel losses alone reward a
grey haze where the future is uncertain, which SSIM punishes (pixel + SSIM: Zhao et al., IEEE TCI 2017)."""
import mindspore as ms
import numpy as np
from mindspore import ops

from src.config import selects_channels, target_channel_indices
from src.data.pipeline import sequence_normalization
from src.metrics import balance_of

SSIM_WINDOW = 7  # scikit-image's default window for 2-D images
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_DATA_RANGE = 1.0


def ssim_per_frame(pred, target):
    """SSIM of every frame as ``skimage.metrics.structural_similarity(..., data_range=1.0)`` (uniform 7x7
    window, sample covariance, valid windows only); pred, target (N, 1, H, W) in [0, 1] -> (N,)."""
    c1, c2 = (SSIM_K1 * SSIM_DATA_RANGE) ** 2, (SSIM_K2 * SSIM_DATA_RANGE) ** 2
    count = SSIM_WINDOW * SSIM_WINDOW
    cov_norm = count / (count - 1.0)
    maps = ops.cat([pred, target, pred * pred, target * target, pred * target], axis=1)  # (N, 5, H, W)
    # the uniform filter of scikit-image, cropped by (window-1)/2 = a 'valid' average pool
    means = ops.avg_pool2d(maps, SSIM_WINDOW, stride=1)  # (N, 5, H-6, W-6)
    ux, uy, uxx, uyy, uxy = ops.split(means, 1, axis=1)  # 5 x (N, 1, H-6, W-6)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux * ux + uy * uy + c1) * (vx + vy + c2)
    return ops.mean(numerator / denominator, axis=(1, 2, 3))  # (N,)


def ssim_loss(pred, target):
    """1 - mean SSIM over all frames and channels (as the metric averages channels).
    pred, target: (B, T, C, H, W) in [0, 1]."""
    b, t, c, h, w = pred.shape
    frames = (b * t * c, 1, h, w)  # every channel scored as its own grey frame
    return 1.0 - ops.mean(ssim_per_frame(pred.reshape(frames), target.reshape(frames)))


def to_frames(logits, linear_output):
    """The frames of a network's logits: sigmoid, or the raw output of a ``linear`` one."""
    return logits if linear_output else ops.sigmoid(logits)


def data_counter(group_size=1):
    """``count(valid) -> float32``: the pixels with data of a batch, per rank: with data-parallel ranks the count of
    the global batch (all-reduced) / group_size, so that the mean of the ranks' gradients is the gradient of the mean
    over every pixel with data of the global batch, as one process on it computes (a local count would weight every
    rank's pixels by its own count)."""
    all_reduce = ops.AllReduce() if group_size > 1 else None

    def count(valid):
        # an integer sum is exact (a float32 sum is not beyond 2^24 pixels); the CPU AllReduce takes float32 only
        pixels = ops.stop_gradient(valid).astype(ms.int32).sum().astype(ms.float32)
        return pixels if all_reduce is None else all_reduce(pixels) / group_size

    return count


LOCAL_COUNT = data_counter()


def valid_share(values, valid, count=LOCAL_COUNT):
    """N / (pixels with data), N = all pixels of ``values`` (a static shape): the factor that turns a mean over
    all pixels of ``values * valid`` into the mean over the pixels with data; exactly 1.0 when every pixel has data
    (N / N), so the masked losses then equal the plain ones bit for bit. A batch without data gives loss 0.
    ``count``: :func:`data_counter`'s function (data-parallel: the global batch's count per rank)."""
    total = 1.0
    for size in values.shape:
        total *= size
    return total / ops.maximum(count(valid), 1.0)


def pixel_loss(logits, targets, name, linear_output=False, valid=None, count=LOCAL_COUNT):
    """``mse`` of the frames or ``bce`` on the logits (sigmoid output only); logits, targets (B, T, C, H, W);
    ``valid`` (float 0/1, their shape; None: every pixel): the mean over the pixels with data only."""
    if name == "mse":
        err = ops.square(to_frames(logits, linear_output) - targets)  # (B, T, C, H, W)
        return ops.mean(err) if valid is None else ops.mean(err * valid) * valid_share(err, valid, count)
    if name == "bce":
        weight = ops.ones_like(logits) if valid is None else valid  # per-pixel weight: 0 where no data
        loss = ops.binary_cross_entropy_with_logits(logits, targets, weight, ops.ones_like(logits))
        return loss if valid is None else loss * valid_share(logits, valid, count)
    raise ValueError(f"unknown loss {name!r}")


def loss_targets(inputs, targets, all_frames, channels=None):
    """The true frames the loss compares with: every next frame (B, T-1, C_out, H, W), frames 1 .. T-1 of the
    whole sequence, or only ``targets`` (B, T_out, C_out, H, W). The data hold the targets' ``target_channels``
    only; ``channels`` (int32 indices, None: all) takes the same channels of the observed frames."""
    if not all_frames:
        return targets
    observed = inputs[:, 1:]  # (B, T_in - 1, C, H, W)
    if channels is not None:
        observed = ops.gather(observed, channels, 2)  # (B, T_in - 1, C_out, H, W)
    return ops.cat([observed, targets], axis=1)


def pixel_classes(cfg):
    """(thresholds in [0, 1] pixel units, weights) of ``loss: balanced`` (the data's, normalised)."""
    thresholds, weights = balance_of(cfg)
    if cfg.dataset == "sequences":
        normalization = sequence_normalization(cfg)
        if normalization is None:
            raise ValueError("loss balanced: the data's dtype must be known (data_dtype) to map loss_thresholds")
        thresholds = normalization.normalize(np.asarray(thresholds, np.float32))
    return [float(v) for v in thresholds], [float(v) for v in weights]


def balanced_loss(logits, targets, thresholds, weights, linear_output=False, valid=None, count=LOCAL_COUNT):
    """mean(w * ((p - t)^2 + |p - t|)), p = the frames of ``logits``, w = weights[#thresholds <= t]; ``valid``
    (float 0/1; None: all): the mean over the pixels with data only."""
    w = ops.full_like(targets, weights[0])
    for k, threshold in enumerate(thresholds):
        w = w + (weights[k + 1] - weights[k]) * (targets >= threshold).astype(targets.dtype)  # class k+1 and above
    err = to_frames(logits, linear_output) - targets
    if valid is None:
        return ops.mean(w * (ops.square(err) + ops.abs(err)))
    return ops.mean(w * valid * (ops.square(err) + ops.abs(err))) * valid_share(err, valid, count)


def make_loss_fn(logits_fn, cfg, group_size=1):
    """``loss(inputs, targets, mask)`` of ``logits_fn`` (``training_forward``), in float32 at any amp level; on
    every next frame with ``loss_frames: all``; ``mask``: the scheduled-sampling mask (src/training/sampling.py).
    With ``nodata``: ``loss(inputs, targets, mask, valid)``, ``valid`` float 0/1 (B, T_out, C, H, W), targets 0
    where it is 0: every pixel loss is a mean over the pixels with data, and the SSIM term compares prediction and
    truth both set to the background 0 at no-data pixels (they agree there, as in the SSIM metric); ``group_size``
    data-parallel ranks share one count of the pixels with data (:func:`data_counter`)."""
    name, ssim_weight = cfg.loss, float(cfg.ssim_weight)
    if name not in ("mse", "bce", "balanced"):
        raise ValueError(f"unknown loss {name!r}")
    classes = pixel_classes(cfg) if name == "balanced" else None
    all_frames, linear = cfg.loss_frames == "all", cfg.output_activation == "linear"
    count = data_counter(group_size) if cfg.nodata else LOCAL_COUNT
    channels = ms.Tensor(np.array(target_channel_indices(cfg), np.int32)) if selects_channels(cfg) else None

    def loss_fn(inputs, targets, mask, valid=None):
        logits = logits_fn(inputs, targets, mask)  # (B, T', C_out, H, W) float32
        truth = loss_targets(inputs, targets, all_frames, channels)  # (B, T', C_out, H, W)
        if classes:
            loss = balanced_loss(logits, truth, *classes, linear_output=linear, valid=valid, count=count)
        else:
            loss = pixel_loss(logits, truth, name, linear_output=linear, valid=valid, count=count)
        if ssim_weight > 0:
            frames = ops.clip_by_value(logits, 0.0, 1.0) if linear else ops.sigmoid(logits)
            if valid is not None:
                frames, truth = frames * valid, truth * valid  # background 0 at no-data pixels in both
            loss = loss + ssim_weight * ssim_loss(frames, truth)
        return loss

    return loss_fn
