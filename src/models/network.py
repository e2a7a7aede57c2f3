"""The network a config asks for (``cfg.arch``): zoo and paper (``encoder_forecaster``), stacked (``stacked``)."""
from src.config import frame_shape, output_frame_shape
from src.models.encoder_forecaster import PaperEncoderForecaster, ZooEncoderForecaster
from src.models.stacked import StackedConvLSTM


def build_network(cfg):
    """The network selected by ``cfg.arch``, sized by the config (frames, frame shape, widths)."""
    channels, height, width = frame_shape(cfg)
    common = dict(peephole=cfg.peephole, forget_bias=cfg.forget_bias, output_bias=cfg.output_bias,
                  frame_channels=channels, frame_size=(height, width))
    output_channels = output_frame_shape(cfg)[0]  # target_channels: fewer than the input's
    if cfg.arch == "zoo":
        return ZooEncoderForecaster(cfg.input_frames, cfg.output_frames, output_channels=output_channels, **common)
    if cfg.arch == "paper":
        return PaperEncoderForecaster(cfg.input_frames, cfg.output_frames, hidden_channels=cfg.hidden_channels,
                                      kernel_size=cfg.kernel_size, patch_size=cfg.patch_size,
                                      group_norm=cfg.group_norm, forecaster_input=cfg.forecaster_input,
                                      output_channels=output_channels, output_activation=cfg.output_activation,
                                      residual=cfg.residual, **common)
    if cfg.arch == "stacked":  # it reads its predictions back: every channel (src.config refuses a subset)
        return StackedConvLSTM(cfg.input_frames, cfg.output_frames, hidden_channels=cfg.hidden_channels,
                               kernel_size=cfg.kernel_size, patch_size=cfg.patch_size, group_norm=cfg.group_norm,
                               output_activation=cfg.output_activation, residual=cfg.residual, **common)
    raise ValueError(f"unknown arch {cfg.arch!r}")
