#!/bin/bash
# CPU quality run: train configs/cpu_small.yaml from scratch on the embedded digits, then
# evaluate the best checkpoint on a fixed held-out generated 2-digit set (seeded by test_seed, never
# the validation set that picked best.ckpt) next to two baselines
# (all-zero frames and repeating the last input frame).
# The run is time-boxed: bench/step_budget.py times the recipe's compiled step on this machine first and
# sizes steps_per_epoch so that training fits TRAIN_MINUTES (default 10.5) and the whole script 15 minutes
# on every machine kind; a faster machine trains more steps (the count is printed and stored in the run's
# config.yaml and checkpoints).
#   bash bench/cpu_quality.sh [OUTPUT_DIR] [--key value ...]
# Bar: per-frame MSE at least 20 % below predict-zeros, SSIM above both baselines.
OUTPUT_DIR=./output/cpu_quality
case "$1" in
    -h|--help) echo "Usage: bash bench/cpu_quality.sh [OUTPUT_DIR] [--key value ...]"; exit 0;;
    --*|"") ;;                      # no OUTPUT_DIR: the arguments are config overrides
    *) OUTPUT_DIR=$1; shift;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
CONFIG="$ROOT/configs/cpu_small.yaml"
TRAIN_MINUTES=${TRAIN_MINUTES:-10.5}   # minutes of training steps; the rest of the 15 is start-up, validation, evaluation
START=$(date +%s)
# the step count that fills TRAIN_MINUTES on this machine (bench/step_budget.py; it lands in the run's config)
SIZE=$("$PYTHON" "$ROOT/bench/step_budget.py" --minutes "$TRAIN_MINUTES" --config_path "$CONFIG" "$@") || exit $?
"$PYTHON" "$ROOT/train.py" --config_path "$CONFIG" --output_dir "$OUTPUT_DIR" --overwrite true "$@" $SIZE || exit $?
TRAINED=$(date +%s)
"$PYTHON" "$ROOT/eval.py" --config_path "$CONFIG" --output_dir "$OUTPUT_DIR" --dataset synthetic \
    --num_sequences 256 --ckpt_file "$OUTPUT_DIR/ckpt/best.ckpt" --save_vis 4 "$@" || exit $?
"$PYTHON" - "$OUTPUT_DIR/eval/metrics.json" $((TRAINED - START)) $(( $(date +%s) - START )) "$OUTPUT_DIR/config.yaml" <<'PY'
import json, sys
import yaml
report = json.load(open(sys.argv[1]))
run = yaml.safe_load(open(sys.argv[4]))
rows = [("model", report)] + sorted(report.get("baselines", {}).items())
print(f"\n{run['epochs']} x {run['steps_per_epoch']} = {run['epochs'] * run['steps_per_epoch']} steps; wall time: "
      f"{int(sys.argv[2])} s to the end of training, {int(sys.argv[3])} s in all; evaluated on the {report['data']}")
print("| predictor | MSE/frame | MAE/frame | SSIM | SSIM (OpenSTL's way) | PSNR |")
print("|---|---:|---:|---:|---:|---:|")
for name, r in rows:
    m = r.get("metrics", r)
    print(f"| {name} | {m['mse']:.2f} | {m['mae']:.2f} | {m['ssim']:.4f} | {m['ssim_openstl']:.4f} | {m['psnr']:.2f} |")
PY
