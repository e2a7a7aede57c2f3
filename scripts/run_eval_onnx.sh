#!/bin/bash
# Evaluate an exported ONNX model with ONNX Runtime (CPU) on mnist_test_seq.npy in the foreground;
# output is also written to <EVAL_DIR>/eval_onnx.log, where EVAL_DIR is OUTPUT_DIR/eval_onnx when
# OUTPUT_DIR (from the model's stored config or --output_dir) holds a training run, else OUTPUT_DIR.
#   bash scripts/run_eval_onnx.sh [ONNX_PATH] [DATA_PATH] [--key value ...]
# Example: bash scripts/run_eval_onnx.sh convlstm.onnx ./data --num_sequences 1000 --threads 2
# Needs: python3 -m pip install -r requirements-onnx.txt (MindSpore is not used).
usage() {
    echo "Usage: bash scripts/run_eval_onnx.sh [ONNX_PATH] [DATA_PATH] [--key value ...]"
    echo "  ONNX_PATH    a .onnx file from: python export.py --ckpt_file CKPT --file_format ONNX"
    echo "  DATA_PATH    directory holding mnist_test_seq.npy (see download.sh), or the .npy file"
    echo "  --key value  a config override (e.g. --num_sequences 1000 --save_vis 4 --output_dir DIR)"
    echo "               or --threads N (ONNX Runtime intra-op threads; default: one per core)"
}
if [ $# -lt 2 ]; then usage; exit 1; fi
ONNX_PATH=$1; DATA_PATH=$2; shift 2
if [ ! -f "$ONNX_PATH" ]; then echo "error: ONNX_PATH $ONNX_PATH not found"; usage; exit 1; fi
case "$ONNX_PATH" in *.onnx) ;; *) echo "error: ONNX_PATH must be a .onnx file, got '$ONNX_PATH'"; usage; exit 1;; esac
if [ ! -e "$DATA_PATH" ]; then
    echo "error: DATA_PATH $DATA_PATH not found (run: bash download.sh DATA_DIR)"; usage; exit 1
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
# relative paths are relative to the directory the script is called from
ARGS=(--onnx_file "$(realpath "$ONNX_PATH")" --data_path "$(realpath "$DATA_PATH")")
# DATA_PATH is the published test file: evaluate on it unless --dataset is given explicitly
case " $* " in *" --dataset "*|*" --dataset="*) ;; *) ARGS+=(--dataset mnist);; esac

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
EVAL_DIR=$("$PYTHON" "$ROOT/eval_onnx.py" --print_eval_dir "${ARGS[@]}" "$@" 2>&1) || { echo "$EVAL_DIR"; exit 1; }
mkdir -p "$EVAL_DIR" || exit 1
LOG="$EVAL_DIR/eval_onnx.log"
echo "evaluation log: $LOG"

set -o pipefail
"$PYTHON" "$ROOT/eval_onnx.py" "${ARGS[@]}" "$@" 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
