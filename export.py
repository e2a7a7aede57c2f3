"""Export a trained checkpoint to MINDIR (default), ONNX or AIR (Ascend only).

    python export.py --ckpt_file OUTPUT_DIR/ckpt/best.ckpt [--file_name convlstm] [--file_format MINDIR]
                     [--batch_size 1] [--device_target CPU] [--config_path F] [--check true]
                     [--export_height H --export_width W]

The network is rebuilt from the config stored in the checkpoint (or from --config_path, which
must describe the same architecture). The exported model takes one float32 input of fixed
shape (batch_size, input_frames, C, H, W) with values in [0, 1] and returns (batch_size,
output_frames, C, H, W) in [0, 1]: C x H x W is the training data's frame shape (Moving MNIST:
1 x image_size x image_size; own sequences: the channels, frame_height and frame_width the
checkpoint stores; the stored config also carries their normalisation), the output's C only the
model's target_channels when it names some. The export batch size is
--batch_size when given on the command line, otherwise 1 (one sequence per call, as the
Ascend 310 app feeds it); the training batch size stored in the checkpoint is not used.
--export_height H --export_width W exports for a deployment frame of H x W instead (a side left 0 keeps the
model's): the networks are convolutional, so a model trained on crops (crop_size) or on smaller frames
predicts larger ones. The size must fit the arch's tiling rule (multiples of patch_size; of 4 for arch zoo);
a network with peephole weights (per pixel) is refused. The file then records the deployment frame as its
frame shape, and every reader of it (eval_onnx.py, predict.py, preprocess.py, the Ascend 310 app) uses that.
The file carries the config it was built from, so predict.py and eval_onnx.py need no
repeated flags, and the checkpoint's split of record, so they and preprocess.py refuse a data
file that is not the one it was trained on (docs/own_data.md).

--check true reloads the file (MINDIR: mindspore.load + nn.GraphCell; ONNX: an ONNX Runtime
session) and prints the largest absolute difference to the checkpoint network on the same
input; it fails when the difference exceeds --tolerance (default 1e-5).
"""
import os

from src.cli import run_cli
from src.config import deployment_config, frame_shape, keys_help
from src.errors import ConfigError

OPTIONS = {"check": "false", "tolerance": "1e-5"}  # script options besides the config keys
DEFAULT_EXPORT_BATCH = 1


def check_export_parity(net, path, file_format, input_shape, tolerance):
    """Max |exported - checkpoint network| on one seeded random input; raises ExportError above tolerance."""
    import mindspore as ms
    import numpy as np

    from src.export import ExportError
    from src.export.model_info import read_model_info
    from src.predictor import BatchPredictor, max_abs_difference

    x = np.random.default_rng(0).random(input_shape, dtype=np.float32)  # (B, T_in, 1, H, W) in [0, 1)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    expected = net(ms.Tensor(x)).asnumpy()
    exported = BatchPredictor.from_model(read_model_info(path, file_format)).predict(x)
    diff = max_abs_difference(exported, expected)
    verdict = "OK" if diff <= tolerance else "FAILED"
    print(f"parity: max |exported - checkpoint| = {diff:.3e} on {input_shape} (tolerance {tolerance:g}): {verdict}",
          flush=True)
    if diff > tolerance:
        raise ExportError(f"exported model {path} differs from the checkpoint network by {diff:.3e} "
                          f"(> tolerance {tolerance:g}); the file was kept for inspection")
    return diff


def frame_text(deployed, trained):
    """The exported frame shape, and the checkpoint's when the export is for another deployment frame."""
    shape, own = frame_shape(deployed), frame_shape(trained)
    crops = f", trained on {trained.crop_size}x{trained.crop_size} crops" if trained.crop_size else ""
    text = f"{'x'.join(map(str, shape))} (C x H x W)"
    if shape == own:
        return text + f", the checkpoint's{crops}"
    return text + f", the deployment frame (--export_height/--export_width; the checkpoint's: " \
                  f"{'x'.join(map(str, own))}{crops})"


def main(argv):
    from src.checkpoint import config_of_record
    from src.export.writer import check_export_format
    from src.cli import overrides_argv, parse_bool, parse_float, split_options
    from src.config import COMMAND_LINE_KEYS

    options, overrides = split_options(argv, OPTIONS, COMMAND_LINE_KEYS)
    check, tolerance = parse_bool(options["check"], "check"), parse_float(options["tolerance"], "tolerance")
    batch_given = "batch_size" in overrides
    cfg = config_of_record(overrides_argv(overrides))  # without a checkpoint: bad command-line values first
    if not cfg.ckpt_file:
        raise ConfigError("no checkpoint given: pass --ckpt_file PATH (e.g. OUTPUT_DIR/ckpt/best.ckpt)")
    batch_size = cfg.batch_size if batch_given else DEFAULT_EXPORT_BATCH
    check_export_format(cfg.file_format, cfg.device_target)  # refuse AIR off Ascend before any work
    if check and cfg.file_format == "AIR":
        raise ConfigError("--check cannot load AIR files on this machine (use --file_format MINDIR or ONNX, or "
                          "--check false)")
    if check and cfg.file_format == "ONNX":
        from src.predictor import import_onnxruntime

        import_onnxruntime()  # before the export: refuse early when it cannot be checked

    from src.export.writer import export_network
    from src.device import init_inference_device
    from src.checkpoint import load_network_from_checkpoint, read_data_record

    init_inference_device(cfg)
    net, cfg = load_network_from_checkpoint(cfg.ckpt_file, cfg)
    deployed = deployment_config(cfg)
    path, input_shape, output_shape = export_network(net, deployed, batch_size, cfg.file_name, cfg.file_format,
                                                     read_data_record(cfg.ckpt_file))
    print(f"exported {cfg.file_format}: {path} ({os.path.getsize(path) / 1e6:.1f} MB)")
    print(f"  checkpoint: {cfg.ckpt_file}")
    print(f"  frames: {frame_text(deployed, cfg)}")
    print(f"  input : {input_shape} float32, pixels in [0, 1]  (batch, input frames, channel, height, width)")
    print(f"  output: {output_shape} float32, pixels in [0, 1]  (batch, predicted frames, channel, height, width)",
          flush=True)
    if check:
        check_export_parity(net, path, cfg.file_format, input_shape, tolerance)
    return 0


if __name__ == "__main__":
    run_cli(main, doc=__doc__, options=OPTIONS, config_keys=keys_help)
