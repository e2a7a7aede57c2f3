"""Convert the Moving MNIST test set into the binary files the Ascend 310 app reads.

    python preprocess.py --data_path ./data [--num_sequences 0] --output_dir ./preprocess_Result
                         [--mindir_file convlstm.mindir]

For test sequence i it writes
  OUTPUT_DIR/input/seq_<i>.bin   frames 0..T_in-1, raw float32 (1, T_in, 1, H, W), pixels in [0, 1]
  OUTPUT_DIR/label/seq_<i>.npy   the ground-truth frames T_in..T_in+T_out-1, uint8 (T_out, H, W)
and OUTPUT_DIR/preprocess.json (files and shapes) for postprocess.py, which divides the labels by 255
as the evaluation does. --mindir_file: frame counts and image size from the model (batch size 1).

Own sequences (a model trained with ``dataset sequences``, or ``--dataset sequences``): the windows
eval.py would score (``--eval_split all``: every window), read with the model's data_layout and
normalisation, refused as eval.py refuses them when the file is not the one the model was trained on;
inputs (1, T_in, C, H, W), labels float32 (T_out, C_out, H, W) in [0, 1] (C_out: the model's
target_channels, which the manifest records for postprocess.py's baselines); the manifest records the
normalisation (and the B-MSE/B-MAE classes, ``balance``) for postprocess.py --thresholds, and what was
scored (``description``: with ``--eval_split all``, whether the windows are held-out).

    python preprocess.py --mindir_file rain.mindir --output_dir ./preprocess_Result [--data_path rain.npy]
"""
import glob
import os

import numpy as np

from src.config import load_config, output_frame_shape
from src.cli import run_cli
from src.config import keys_help
from src.errors import ConfigError
from src.io import write_json_atomic

OPTIONS = {"mindir_file": ""}
MANIFEST = "preprocess.json"


def one_sequence_per_call(info):
    """``info`` of a model the Ascend 310 app can feed: one sequence per call."""
    if info.batch_size != 1:
        raise ConfigError(f"model {info.path} has batch size {info.batch_size}; the Ascend 310 app feeds one "
                          "sequence per call: export it with --batch_size 1")
    return info


def model_shapes(cfg, mindir_file):
    """(input_frames, output_frames, image_size): from the MINDIR when given, else from the config."""
    if not mindir_file:
        return cfg.input_frames, cfg.output_frames, cfg.image_size
    from src.export.model_info import read_mindir_info

    info = one_sequence_per_call(read_mindir_info(mindir_file))
    return info.input_frames, info.output_frames, info.image_size


def mnist_labels(targets):
    """(T_out, 1, H, W) in [0, 1] -> the published uint8 frames (T_out, H, W); rint undoes the / 255."""
    return np.rint(targets[:, 0] * 255.0).astype(np.uint8)


def write_sequences(source, out_dir, labels_of=mnist_labels):
    """Every sequence of ``source`` as input .bin (1, T_in, C, H, W) + label .npy; returns the names."""
    from src.export.bin_files import write_bin

    input_dir, label_dir = os.path.join(out_dir, "input"), os.path.join(out_dir, "label")
    for folder, pattern in ((input_dir, "seq_*.bin"), (label_dir, "seq_*.npy")):
        os.makedirs(folder, exist_ok=True)
        for path in glob.glob(os.path.join(folder, pattern)):  # an earlier run's: the app must not read them
            os.remove(path)
    names = [f"seq_{i:05d}" for i in range(len(source))]
    for i, name in enumerate(names):
        inputs, targets = source[i]  # (T_in, C, H, W), (T_out, C, H, W) float32 in [0, 1]
        write_bin(os.path.join(input_dir, name + ".bin"), inputs[None])  # (1, T_in, C, H, W)
        np.save(os.path.join(label_dir, name + ".npy"), labels_of(targets), allow_pickle=False)
    return names


def own_config(options, overrides):
    """(config, what it was trained on) of an own-sequence model file (its normalisation, layout and split of
    record), or None."""
    if not options["mindir_file"] or "config_path" in overrides:
        return None
    from src.export.model_info import config_for_model, read_mindir_info
    from src.evaluation import data_of_record

    info = read_mindir_info(options["mindir_file"])
    if info.config is None or info.config.dataset != "sequences":
        return None
    cfg = config_for_model(one_sequence_per_call(info), overrides)
    return cfg, data_of_record(cfg, info)


def preprocess_own_sequences(cfg, model_file, trained=None):
    """Own sequences: the windows eval.py scores, checked against the model's frame shape and split of record
    (``trained``: src.data.split_record.TrainedOn, None: no model)."""
    from src.data.pipeline import evaluation_windows
    from src.evaluation import config_for_data
    from src.metrics import balance_of

    source, described = evaluation_windows(cfg, trained)
    cfg = config_for_data(cfg, source, model_file)
    os.makedirs(cfg.output_dir, exist_ok=True)
    names = write_sequences(source, cfg.output_dir, labels_of=lambda targets: targets.astype(np.float32))
    shape, out_shape = [cfg.channels, cfg.frame_height, cfg.frame_width], list(output_frame_shape(cfg))
    manifest = {"dataset": "sequences", "data_file": os.path.abspath(source.path), "description": described,
                "num_sequences": len(names), "input_shape": [1, cfg.input_frames] + shape,
                "output_shape": [1, cfg.output_frames] + out_shape, "label_shape": [cfg.output_frames] + out_shape,
                "target_channels": list(cfg.target_channels),
                "input_dtype": "float32", "label_dtype": "float32",
                "normalization": source.normalization.to_dict(), "names": names}
    classes = balance_of(cfg)  # B-MSE/B-MAE intensity classes of the model's config, for postprocess.py
    if classes is not None:
        manifest["balance"] = {"thresholds": list(classes[0]), "weights": list(classes[1])}
    return write_manifest(cfg.output_dir, manifest, f"{len(names)} windows: {described}",
                          ", values in [0, 1]")


def write_manifest(out_dir, manifest, summary, input_note=""):
    """Write preprocess.json and print ``summary`` and where the inputs and labels are."""
    path = write_json_atomic(os.path.join(out_dir, MANIFEST), manifest)
    print(summary)
    print(f"inputs: {os.path.join(out_dir, 'input')}/seq_*.bin float32 "
          f"{tuple(manifest['input_shape'])}{input_note}")
    print(f"labels: {os.path.join(out_dir, 'label')}/seq_*.npy {manifest['label_dtype']} "
          f"{tuple(manifest['label_shape'])}")
    print(f"manifest: {path}")
    return 0


def main(argv):
    from src.data.sequences import open_test_file, resolve_test_file
    from src.cli import overrides_argv, split_options
    from src.config import COMMAND_LINE_KEYS

    options, overrides = split_options(argv, OPTIONS, COMMAND_LINE_KEYS)
    own = own_config(options, overrides)
    if own is not None:
        cfg, trained = own
        return preprocess_own_sequences(cfg, options["mindir_file"], trained)
    if overrides.get("dataset") == "sequences":
        return preprocess_own_sequences(load_config(overrides_argv(overrides)), options["mindir_file"])
    overrides.setdefault("dataset", "mnist")  # the published test file is what the 310 app is scored on
    cfg = load_config(overrides_argv(overrides))
    t_in, t_out, size = model_shapes(cfg, options["mindir_file"])
    data_file = resolve_test_file(cfg.data_path)
    os.makedirs(cfg.output_dir, exist_ok=True)
    names = write_sequences(open_test_file(data_file, cfg.num_sequences, t_in, t_out, size), cfg.output_dir)
    manifest = {"data_file": os.path.abspath(data_file), "num_sequences": len(names),
                "input_shape": [1, t_in, 1, size, size], "output_shape": [1, t_out, 1, size, size],
                "label_shape": [t_out, size, size], "input_dtype": "float32", "label_dtype": "uint8",
                "names": names}
    return write_manifest(cfg.output_dir, manifest, f"{len(names)} sequences from {data_file}")


if __name__ == "__main__":
    run_cli(main, doc=__doc__, options=OPTIONS, config_keys=keys_help)
