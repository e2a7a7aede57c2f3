"""Evaluate a ConvLSTM checkpoint (or a baseline) on Moving MNIST or own sequence arrays.

    python eval.py --config_path configs/cpu_small.yaml --ckpt_file OUTPUT_DIR/ckpt/best.ckpt \
        --data_path ./data --dataset mnist [--num_sequences K] [--save_vis N] [--output_dir D]
    python eval.py --ckpt_file OUTPUT_DIR/ckpt/best.ckpt [--key value ...]   # the checkpoint's own config
    python eval.py --baseline copy_last --data_path ./data --dataset mnist
    python eval.py --ckpt_file OUTPUT_DIR/ckpt/best.ckpt --thresholds [20,35]   # + POD/FAR/CSI/HSS in data units

Prints the per-frame metric table and writes metrics.json, metrics_per_frame.png and the
pictures into the eval directory (see src/eval_report.py for where that is).
"""
from src.cli import run_cli
from src.config import keys_help


def main(argv):
    from src.eval_report import main as evaluate

    return evaluate(argv)  # the checkpoint's config resolved with the command line; see src/eval_report.py


if __name__ == "__main__":
    run_cli(main, doc=__doc__, config_keys=keys_help)
