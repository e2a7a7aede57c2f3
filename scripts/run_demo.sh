#!/bin/bash
# Demo on a fresh machine, no download needed, about 4 minutes on 2 CPU cores: train a small
# ConvLSTM on the embedded synthetic digits (configs/cpu_demo.yaml), evaluate it against the
# predict-zeros and repeat-last-frame baselines on a held-out generated test set (test_seed,
# never the validation sequences that chose best.ckpt), and write pictures of its predictions.
#   bash scripts/run_demo.sh [OUTPUT_DIR] [--key value ...]
usage() {
    echo "Usage: bash scripts/run_demo.sh [OUTPUT_DIR] [--key value ...]"
    echo "  OUTPUT_DIR   run directory (default ./output/demo); an existing demo run there is replaced"
    echo "  --key value  config overrides for training and evaluation (python -m src.config lists the keys)"
}
OUTPUT_DIR=./output/demo
if [ $# -ge 1 ]; then
    case "$1" in
        -h|--help) usage; exit 0;;
        --*) ;;
        *) OUTPUT_DIR=$1; shift;;
    esac
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
CONFIG="$ROOT/configs/cpu_demo.yaml"
START=$(date +%s)

echo "== 1/2 training (configs/cpu_demo.yaml, synthetic digits) into $OUTPUT_DIR"
"$PYTHON" "$ROOT/train.py" --config_path "$CONFIG" --output_dir "$OUTPUT_DIR" --overwrite true "$@" || exit $?
echo "== 2/2 evaluating $OUTPUT_DIR/ckpt/best.ckpt on the held-out generated test set (test_seed)"
"$PYTHON" "$ROOT/eval.py" --config_path "$CONFIG" --output_dir "$OUTPUT_DIR" --dataset synthetic \
    --ckpt_file "$OUTPUT_DIR/ckpt/best.ckpt" --save_vis 2 "$@" > "$OUTPUT_DIR/eval.log" 2>&1
STATUS=$?
if [ $STATUS -ne 0 ]; then cat "$OUTPUT_DIR/eval.log"; exit $STATUS; fi
EVAL_DIR="$OUTPUT_DIR/eval"
STRIP=$(ls "$EVAL_DIR"/vis/*.png 2>/dev/null | head -n 1)
echo "demo done in $(( $(date +%s) - START )) s; scores on the held-out generated test set:"
grep -o 'on [0-9]* sequences of generated test set[^;(]*' "$OUTPUT_DIR/eval.log" | head -n 1
sed -n '/^ *MSE  *MAE  *SSIM  *PSNR$/,/^the model beats/p' "$OUTPUT_DIR/eval.log"
grep '^warning:' "$OUTPUT_DIR/eval.log"
echo "prediction strip (rows: input, ground truth, prediction, error): $STRIP"
echo "animated comparison: ${STRIP%.png}.gif"
echo "per-frame metrics plot: $EVAL_DIR/metrics_per_frame.png (all numbers: $EVAL_DIR/metrics.json, log: $OUTPUT_DIR/eval.log)"
echo "next: the 15-minute quality run, bash bench/cpu_quality.sh ./output/quality"
