"""The training step (loss, gradients, all-reduce, clipping, loss scaling, update), compiled whole with
``mindspore.jit`` in mode graph; mode pynative runs the same Python eagerly and gives the same numbers."""
import mindspore as ms
from mindspore import nn, ops

from src.device import quiet_mindspore_log
from src.training.losses import make_loss_fn
from src.training.sampling import inference_mask


def build_optimizer(cfg, net):
    """Adam (default), RMSProp (the paper's choice, decay 0.9) or plain SGD. The learning rate is a
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
    if cfg.optimizer == "sgd":
        return nn.SGD(params, learning_rate=lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


DYNAMIC_SCALE_FACTOR = 2  # dynamic loss scale: x/÷ this factor
DYNAMIC_SCALE_WINDOW = 1000  # ... raised after this many finite steps in a row


def make_loss_scaler(loss_scale, value):
    """``loss_scale`` none | fixed | dynamic (see ``src.device.effective_loss_scale``)."""
    if loss_scale == "none":
        return None
    if loss_scale == "fixed":
        return ms.amp.StaticLossScaler(value)
    if loss_scale == "dynamic":
        return ms.amp.DynamicLossScaler(value, DYNAMIC_SCALE_FACTOR, DYNAMIC_SCALE_WINDOW)
    raise ValueError(f"unknown loss_scale {loss_scale!r}")


def loss_scaler_state(scaler):
    """JSON-able full state of a loss scaler (None without one): the scale and, for the dynamic
    scaler, the count of finite steps since the last change."""
    if scaler is None:
        return None
    state = {"scale": float(scaler.scale_value.asnumpy())}
    if isinstance(scaler, ms.amp.DynamicLossScaler):
        state["counter"] = int(scaler.counter.asnumpy())
    return state


def load_loss_scaler_state(scaler, state):
    """Restore what ``loss_scaler_state`` returned (a bare float is an older checkpoint's scale)."""
    if scaler is None or state is None:
        return
    if not isinstance(state, dict):
        state = {"scale": float(state)}
    scaler.scale_value.set_data(ms.Tensor(state["scale"], ms.float32))
    if isinstance(scaler, ms.amp.DynamicLossScaler) and "counter" in state:
        scaler.counter.set_data(ms.Tensor(state["counter"], scaler.counter.dtype))


def build_train_step(cfg, forward, optimizer, scaler=None, group_size=1):
    """``step(inputs, targets, lr, mask=None, valid=None) -> (loss, finite)`` of ``forward`` (``training_forward``),
    device tensors (reading them costs a host sync); not ``finite``: a gradient overflowed and the update was
    skipped. ``mask``: the scheduled-sampling mask (B, T-2) of ``src.training.sampling`` (default: the inference
    mask), a tensor of fixed shape, so a new mask never compiles the step again. With ``nodata``, ``valid``: float
    0/1 (B, T_out, C, H, W), 1 where the target has data (default: all ones), of fixed shape too; without
    ``nodata`` the step takes no ``valid`` and computes what it always did."""
    loss_fn = make_loss_fn(forward, cfg, group_size)
    masked = bool(cfg.nodata)
    reducer = nn.DistributedGradReducer(optimizer.parameters, mean=True, degree=group_size) \
        if group_size > 1 else None
    clip = float(cfg.grad_clip)

    def scaled_loss(inputs, targets, mask, *valid):
        loss = loss_fn(inputs, targets, mask, *valid)
        return scaler.scale(loss) if scaler is not None else loss

    grad_fn = ms.value_and_grad(scaled_loss, None, optimizer.parameters)

    def compiled(inputs, targets, mask, lr, *valid):  # valid: () or (the no-data mask,)
        ops.assign(optimizer.learning_rate, lr)
        loss, grads = grad_fn(inputs, targets, mask, *valid)
        if reducer is not None:
            grads = reducer(grads)
        if scaler is not None:
            loss, grads = scaler.unscale(loss), scaler.unscale(grads)
        finite = ms.amp.all_finite(grads)
        if scaler is not None:
            scaler.adjust(finite)
        if clip > 0:
            grads = ops.clip_by_global_norm(grads, clip)
        if finite:
            optimizer(grads)
        return loss, finite

    compiled = ms.jit(compiled) if cfg.mode == "graph" else compiled
    t_in, t_out = cfg.input_frames, cfg.output_frames

    def step(inputs, targets, lr, mask=None, valid=None):
        if mask is None:
            mask = ms.Tensor(inference_mask(inputs.shape[0], t_in, t_out))  # (B, T-2)
        if not masked:
            return compiled(inputs, targets, mask, lr)
        if valid is None:
            valid = ops.ones_like(targets)  # (B, T_out, C, H, W): every pixel has data
        return compiled(inputs, targets, mask, lr, valid)

    return step
