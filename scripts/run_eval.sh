#!/bin/bash
# Evaluate a checkpoint on mnist_test_seq.npy in the foreground; output is also written to
# <EVAL_DIR>/eval.log, where EVAL_DIR is OUTPUT_DIR/eval when OUTPUT_DIR holds a training run
# (OUTPUT_DIR/eval_<baseline> for --baseline), else OUTPUT_DIR itself.
#   bash scripts/run_eval.sh [CONFIG_PATH] [CHECKPOINT] [DATA_PATH] [DEVICE_TARGET] [DEVICE_ID] [--key value ...]
# Example: bash scripts/run_eval.sh configs/cpu_small.yaml output/cpu_small/ckpt/best.ckpt ./data CPU 0 --save_vis 4
usage() {
    echo "Usage: bash scripts/run_eval.sh [CONFIG_PATH] [CHECKPOINT] [DATA_PATH] [DEVICE_TARGET] [DEVICE_ID] [--key value ...]"
    echo "  CONFIG_PATH    the yaml file the checkpoint was trained with (e.g. configs/cpu_small.yaml); with a"
    echo "                 checkpoint it only supplies run-only keys (device, output_dir, workers): the network"
    echo "                 and every training override come from the checkpoint"
    echo "  CHECKPOINT     a .ckpt file written by train.py (e.g. OUTPUT_DIR/ckpt/best.ckpt);"
    echo "                 'none' together with --baseline zeros|copy_last to score a baseline"
    echo "  DATA_PATH      directory holding mnist_test_seq.npy (see download.sh), or the .npy file; for a model"
    echo "                 trained on own sequences (dataset sequences), their file or folder"
    echo "  DEVICE_TARGET  Ascend | GPU | CPU"
    echo "  DEVICE_ID      device index, e.g. 0"
    echo "  --key value    any config override, e.g. --num_sequences 1000 --save_vis 4 --output_dir DIR"
}
if [ $# -lt 5 ]; then usage; exit 1; fi
CONFIG_PATH=$1; CHECKPOINT=$2; DATA_PATH=$3; DEVICE_TARGET=$4; DEVICE_ID=$5; shift 5
if [ ! -f "$CONFIG_PATH" ]; then echo "error: config file $CONFIG_PATH not found"; usage; exit 1; fi
if [ "$CHECKPOINT" != "none" ] && [ ! -f "$CHECKPOINT" ]; then
    echo "error: checkpoint $CHECKPOINT not found"; usage; exit 1
fi
if [ ! -e "$DATA_PATH" ]; then
    echo "error: DATA_PATH $DATA_PATH not found (run: bash download.sh DATA_DIR)"; usage; exit 1
fi
case "$DEVICE_TARGET" in Ascend|GPU|CPU) ;; *) echo "error: DEVICE_TARGET must be Ascend, GPU or CPU, got '$DEVICE_TARGET'"; usage; exit 1;; esac
if ! [[ "$DEVICE_ID" =~ ^[0-9]+$ ]]; then echo "error: DEVICE_ID must be a non-negative integer, got '$DEVICE_ID'"; usage; exit 1; fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
# relative paths are relative to the directory the script is called from
CONFIG_PATH=$(realpath "$CONFIG_PATH")
DATA_PATH=$(realpath "$DATA_PATH")
ARGS=(--config_path "$CONFIG_PATH" --data_path "$DATA_PATH" --device_target "$DEVICE_TARGET" --device_id "$DEVICE_ID")
if [ "$CHECKPOINT" != "none" ]; then ARGS+=(--ckpt_file "$(realpath "$CHECKPOINT")"); fi
# DATA_PATH is the published test file (evaluated as --dataset mnist) unless the yaml trains on own
# sequences (dataset sequences: DATA_PATH is their file or folder) or --dataset is given explicitly
case " $* " in
    *" --dataset "*|*" --dataset="*) ;;
    *) YAML_DATASET=$(PYTHONPATH="$ROOT" "$PYTHON" -m src.config --get dataset --config_path "$CONFIG_PATH" 2>&1) \
           || { echo "$YAML_DATASET"; exit 1; }
       if [ "$YAML_DATASET" != "sequences" ]; then ARGS+=(--dataset mnist); fi;;
esac

EVAL_DIR=$(PYTHONPATH="$ROOT" "$PYTHON" -m src.eval_report --print_eval_dir "${ARGS[@]}" "$@" 2>&1) \
    || { echo "$EVAL_DIR"; exit 1; }
mkdir -p "$EVAL_DIR" || exit 1
LOG="$EVAL_DIR/eval.log"
echo "evaluation log: $LOG"

export DEVICE_ID RANK_ID=0 RANK_SIZE=1
set -o pipefail
"$PYTHON" "$ROOT/eval.py" "${ARGS[@]}" "$@" 2>&1 | tee "$LOG"
exit "${PIPESTATUS[0]}"
