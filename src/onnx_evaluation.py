"""eval_onnx.py: an exported ONNX model run by ONNX Runtime (no MindSpore) through eval.py's loop, metrics
and files (:func:`src.eval_report.run`, + ``model_file``, ``engine``), in ``eval_onnx/`` of a training run.
The config is the one export.py stored in the file, command-line keys on top. ``--threads N``: intra-op
threads (0: one per core); ``--print_eval_dir`` prints the eval dir.
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
    from src.evaluation import data_of_record
    from src.predictor import BatchPredictor

    argv = list(argv)
    if argv[:1] == [PRINT_EVAL_DIR]:
        cfg, _, _ = resolve(argv[1:])
        print(eval_dir(cfg, ONNX_EVAL_DIR))
        return 0
    cfg, info, threads = resolve(argv)
    return run(cfg, argv, exported=BatchPredictor.from_model(info, threads), script="eval_onnx.py",
               trained=data_of_record(cfg, info))
