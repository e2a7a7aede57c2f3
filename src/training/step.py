"""The training step: loss, gradients, all-reduce, clipping, loss scaling, update.

``build_train_step`` returns a function ``step(inputs, targets, lr) -> (loss, finite)``.
With ``cfg.mode == "graph"`` the whole step is compiled with ``mindspore.jit``; with
``"pynative"`` the same Python runs eagerly (for debugging) and gives the same numbers.
"""
import mindspore as ms
from mindspore import nn, ops

from src.device import effective_amp_level, quiet_mindspore_log
from src.training.losses import make_loss_fn


def build_optimizer(cfg, net):
    """Adam (default) or RMSProp (the paper's choice, decay 0.9). The learning rate is a
    parameter that the step overwrites with the scheduled value every step."""
    lr = ms.Tensor(cfg.lr, ms.float32)
    params = net.trainable_params()
    if cfg.optimizer == "adam":
        with quiet_mindspore_log():  # nn.Adam logs a FusedSparseAdam deprecation notice
            return nn.Adam(params, learning_rate=lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        opt = nn.RMSProp(params, learning_rate=lr, decay=0.9, epsilon=1e-6, weight_decay=cfg.weight_decay)
        # MindSpore starts the mean square at 1, which makes the first hundreds of steps
        # about lr * grad (tiny); start it at 0 as PyTorch and Keras do.
        for mean_square in opt.ms:  # the "mean_square.*" parameters
            mean_square.set_data(ops.zeros_like(mean_square))
        return opt
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def make_loss_scaler(cfg):
    """Loss scaling for mixed precision; on CPU (float32) none is used."""
    if effective_amp_level(cfg) == "O0" or cfg.loss_scale == "none":
        return None
    if cfg.loss_scale == "fixed":
        return ms.amp.StaticLossScaler(cfg.loss_scale_value)
    return ms.amp.DynamicLossScaler(cfg.loss_scale_value, 2, 1000)


def build_train_step(cfg, net, optimizer, group_size=1):
    """Compose the step. Returns (step_fn, loss_scaler or None)."""
    loss_fn = make_loss_fn(net, cfg)
    scaler = make_loss_scaler(cfg)
    reducer = nn.DistributedGradReducer(optimizer.parameters, mean=True, degree=group_size) \
        if group_size > 1 else None
    clip = float(cfg.grad_clip)

    def scaled_loss(inputs, targets):
        loss = loss_fn(inputs, targets)
        return scaler.scale(loss) if scaler is not None else loss

    grad_fn = ms.value_and_grad(scaled_loss, None, optimizer.parameters)

    def step(inputs, targets, lr):
        ops.assign(optimizer.learning_rate, lr)
        loss, grads = grad_fn(inputs, targets)
        if reducer is not None:
            grads = reducer(grads)
        if scaler is not None:
            loss = scaler.unscale(loss)
            grads = scaler.unscale(grads)
        finite = ms.amp.all_finite(grads)
        if scaler is not None:
            scaler.adjust(finite)
        if clip > 0:
            grads = ops.clip_by_global_norm(grads, clip)
        if finite:
            optimizer(grads)
        return loss, finite

    if cfg.mode == "graph":
        step = ms.jit(step)
    return step, scaler


def build_predict_fn(cfg, net):
    """Forward pass returning frames in [0, 1]; compiled once in graph mode."""

    def predict(inputs):
        return net(inputs)  # (B, T_out, 1, H, W)

    return ms.jit(predict) if cfg.mode == "graph" else predict
