"""eval_onnx.py: an exported ONNX model run by ONNX Runtime (no MindSpore) through eval.py's loop, metrics
and files (:func:`src.eval_report.score`, ``report``; + ``model_file``, ``engine``), in ``eval_onnx/`` of a
training run.
The config is the one export.py stored in the file, command-line keys on top. ``--threads N``: intra-op
threads (0: one per core); ``--print_eval_dir`` prints the eval dir.
"""
from src.cli import split_options
from src.config import COMMAND_LINE_KEYS
from src.errors import ConfigError
from src.eval_report import ONNX_EVAL_DIR, eval_dir, report, score
from src.evaluation import build_source, config_for_data, data_of_record, exported_model
from src.export.model_info import config_for_model, read_onnx_info
from src.predictor import BatchPredictor

OPTIONS = {"onnx_file": "", "threads": "0"}
PRINT_EVAL_DIR = "--print_eval_dir"


def resolve(argv):
    """(cfg, ModelInfo, intra-op threads) from the command line and the ONNX file's stored config."""
    options, overrides = split_options(argv, OPTIONS, COMMAND_LINE_KEYS)
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
    """eval.py's steps (eval.py reads as the procedure) with the ONNX file's predictor as the model."""
    argv = list(argv)
    if argv[:1] == [PRINT_EVAL_DIR]:
        cfg, _, _ = resolve(argv[1:])
        print(eval_dir(cfg, ONNX_EVAL_DIR))
        return 0
    cfg, info, threads = resolve(argv)
    model = exported_model(BatchPredictor.from_model(info, threads), cfg)  # rolled out to lead_frames
    out_dir = eval_dir(cfg, ONNX_EVAL_DIR)
    source, data = build_source(cfg, data_of_record(cfg, info))  # own data: refused if not the split of record
    cfg = config_for_data(cfg, source, model.exported.name)
    return report(cfg, model, score(cfg, model, source, data, out_dir), data, out_dir, argv, script="eval_onnx.py")
