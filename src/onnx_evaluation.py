"""Evaluation of an exported ONNX model in ONNX Runtime, with the loop, metrics and files of eval.py.

    python eval_onnx.py --onnx_file convlstm.onnx [--data_path ./data --dataset mnist] [--num_sequences K]
                        [--save_vis N] [--output_dir D] [--threads N]

The config is the one export.py stored in the file (architecture, frame counts, image size,
data settings, output_dir), with the command-line keys on top: no repeated flags. The
sequences, metrics, baselines, pictures and ``metrics.json`` are those of
:func:`src.eval_report.run`; ``metrics.json`` also names the ``model_file`` and the ``engine``
(``onnxruntime``), and ``checkpoint`` is the one the file was exported from. In a training
run directory the results go to ``eval_onnx/``. MindSpore is not needed.

``--threads N``: ONNX Runtime intra-op threads (0: its default, one per core).
``--print_eval_dir`` (first argument) prints the eval directory and exits (scripts/run_eval_onnx.sh).
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
