"""Evaluation of an exported ONNX model in ONNX Runtime, with the loop, metrics and files of eval.py.

    python eval_onnx.py --onnx_file convlstm.onnx [--data_path ./data --dataset mnist] [--num_sequences K]
                        [--save_vis N] [--output_dir D] [--threads N]

The config is the one export.py stored in the file, command-line keys on top; results as
:func:`src.eval_report.run` (+ ``model_file``, ``engine``), in ``eval_onnx/`` of a training run. No MindSpore.
``--threads N``: ONNX Runtime intra-op threads (0: one per core). ``--print_eval_dir`` prints the eval dir.
"""
from src.errors import ConfigError

OPTIONS = {"onnx_file": "", "threads": "0"}
PRINT_EVAL_DIR = "--print_eval_dir"


def resolve(argv):
    """(cfg, ModelInfo, intra-op threads) from the command line and the ONNX file's stored config."""
    from src.export.model_info import read_onnx_info
    from src.cli import config_for_model, split_options

    options, overrides = split_options(argv, OPTIONS)
    if not options["onnx_file"]:
        raise ConfigError("no model given: pass --onnx_file FILE.onnx (written by export.py --file_format ONNX)")
    if overrides.get("baseline", "none") != "none":
        raise ConfigError("eval_onnx.py evaluates the ONNX model; score a baseline with eval.py --baseline")
    try:
        threads = int(options["threads"])
    except ValueError:
        raise ConfigError(f"option --threads: expected a whole number, got {options['threads']!r}") from None
    info = read_onnx_info(options["onnx_file"])
    return config_for_model(info, overrides), info, threads


def main(argv):
    from src.eval_report import ONNX_EVAL_DIR, eval_dir, run
    from src.predictor import BatchPredictor

    argv = list(argv)
    if argv[:1] == [PRINT_EVAL_DIR]:
        cfg, _, _ = resolve(argv[1:])
        print(eval_dir(cfg, ONNX_EVAL_DIR))
        return 0
    cfg, info, threads = resolve(argv)
    return run(cfg, argv, exported=BatchPredictor.from_model(info, threads), script="eval_onnx.py")
