"""Evaluate an exported ONNX model (ONNX Runtime) on Moving MNIST or own sequences, like eval.py.

    python eval_onnx.py --onnx_file convlstm.onnx --data_path ./data --dataset mnist [--num_sequences K]
        [--save_vis N] [--output_dir D] [--threads N]
    python eval_onnx.py --onnx_file rain.onnx --thresholds [20,35]   # own data: its test split, skill scores

The config comes from the ONNX file (export.py stores it). Prints the per-frame metric table
and writes metrics.json, metrics_per_frame.png and the pictures (see src/onnx_evaluation.py); with
--thresholds also the skill scores and balanced errors (B-MSE/B-MAE) of the model and the baselines.
Needs `pip install -r requirements-onnx.txt`.
"""
from src.cli import run_cli
from src.config import keys_help
from src.onnx_evaluation import OPTIONS, main

if __name__ == "__main__":
    run_cli(main, doc=__doc__, options=OPTIONS, config_keys=keys_help)
