#!/bin/bash
# Demo on a fresh machine, no download needed: train a small ConvLSTM on the embedded
# synthetic digits (configs/cpu_small.yaml), evaluate it against the zeros and copy-last
# baselines on a held-out generated set, and write pictures of its predictions.
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
CONFIG="$ROOT/configs/cpu_small.yaml"

echo "== 1/2 training (configs/cpu_small.yaml, synthetic digits) into $OUTPUT_DIR"
"$PYTHON" "$ROOT/train.py" --config_path "$CONFIG" --output_dir "$OUTPUT_DIR" --overwrite true "$@" || exit $?
echo "== 2/2 evaluating $OUTPUT_DIR/ckpt/best.ckpt on the held-out generated test set (test_seed)"
"$PYTHON" "$ROOT/eval.py" --config_path "$CONFIG" --output_dir "$OUTPUT_DIR" --dataset synthetic \
    --ckpt_file "$OUTPUT_DIR/ckpt/best.ckpt" --save_vis 2 "$@" || exit $?
STRIP=$(ls "$OUTPUT_DIR"/eval/vis/*.png 2>/dev/null | head -n 1)
echo "demo done. Open the prediction strip (rows: input, ground truth, prediction, error): $STRIP"
echo "animated comparison: ${STRIP%.png}.gif; per-frame metrics: $OUTPUT_DIR/eval/metrics_per_frame.png"
