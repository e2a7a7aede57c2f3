"""Evaluate a ConvLSTM checkpoint (or a baseline) on Moving MNIST or own sequence arrays.

    python eval.py --config_path configs/cpu_small.yaml --ckpt_file OUTPUT_DIR/ckpt/best.ckpt \
        --data_path ./data --dataset mnist [--num_sequences K] [--save_vis N] [--output_dir D]
    python eval.py --ckpt_file OUTPUT_DIR/ckpt/best.ckpt [--key value ...]   # the checkpoint's own config
    python eval.py --baseline copy_last --data_path ./data --dataset mnist
    python eval.py --ckpt_file OUTPUT_DIR/ckpt/best.ckpt --thresholds [20,35]   # + POD/FAR/CSI/HSS, FSS in data units
    python eval.py --ckpt_file OUTPUT_DIR/ckpt/best.ckpt --lead_frames 20   # rolled out past output_frames

Prints the per-frame metric table and writes metrics.json, metrics_per_frame.png and the
pictures into the eval directory (see src/eval_report.py for where that is). A checkpoint of own
sequences is scored on its split of record: a data file that changed since training is refused
(--eval_split all scores every window on purpose; docs/own_data.md).
"""
from src.cli import run_cli
from src.config import keys_help


def main(argv):
    from src.checkpoint import config_of_record
    from src.cloud import local_copies
    from src.eval_report import eval_dir, report, score
    from src.evaluation import build_source, config_for_data, data_of_record, model_under_test

    # the checkpoint's stored config with the command line on top; remote data_path/output_dir staged locally
    with local_copies(config_of_record(argv)) as cfg:
        out_dir = eval_dir(cfg)  # eval/ (eval_<baseline>/) of a training run, else output_dir
        trained = data_of_record(cfg)  # own data: what the checkpoint trained on, its split of record
        source, data = build_source(cfg, trained)  # the held-out sequences of that record; data errors first
        checkpoint = cfg.ckpt_file if cfg.baseline == "none" else None
        cfg = config_for_data(cfg, source, checkpoint)  # own data: its frame shape, refused if not the model's
        model = model_under_test(cfg)  # the checkpoint's network, or the baseline --baseline names
        scores = score(cfg, model, source, data, out_dir)  # metrics per frame, baselines, skill scores, pictures
        return report(cfg, model, scores, data, out_dir, argv)  # tables, metrics.json, plots, the summary line


if __name__ == "__main__":
    run_cli(main, doc=__doc__, config_keys=keys_help)
