#!/bin/bash
# Train on one device in the background; output goes to <OUTPUT_DIR>/train.log.
#   bash scripts/run_standalone_train.sh [CONFIG_PATH] [DEVICE_TARGET] [DEVICE_ID] [--key value ...]
# Example: bash scripts/run_standalone_train.sh configs/cpu_small.yaml CPU 0 --epochs 2
usage() {
    echo "Usage: bash scripts/run_standalone_train.sh [CONFIG_PATH] [DEVICE_TARGET] [DEVICE_ID] [--key value ...]"
    echo "  CONFIG_PATH    a yaml file from configs/ (e.g. configs/ascend.yaml)"
    echo "  DEVICE_TARGET  Ascend | GPU | CPU"
    echo "  DEVICE_ID      device index, e.g. 0"
    echo "  --key value    any config override (python -m src.config lists the keys)"
}
if [ $# -lt 3 ]; then usage; exit 1; fi
CONFIG_PATH=$1; DEVICE_TARGET=$2; DEVICE_ID=$3; shift 3
if [ ! -f "$CONFIG_PATH" ]; then echo "error: config file $CONFIG_PATH not found"; usage; exit 1; fi
case "$DEVICE_TARGET" in Ascend|GPU|CPU) ;; *) echo "error: DEVICE_TARGET must be Ascend, GPU or CPU, got '$DEVICE_TARGET'"; usage; exit 1;; esac
if ! [[ "$DEVICE_ID" =~ ^[0-9]+$ ]]; then echo "error: DEVICE_ID must be a non-negative integer, got '$DEVICE_ID'"; usage; exit 1; fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
CONFIG_PATH=$(realpath "$CONFIG_PATH")
# the run directory: --output_dir from the extra arguments, else the config's output_dir
# relative paths (output_dir, data_path) are relative to the directory the script is called from
source "$ROOT/scripts/common.sh"
resolve_output_dir "$CONFIG_PATH" "$@"
LOG="$OUTPUT_DIR/train.log"

export DEVICE_ID RANK_ID=0 RANK_SIZE=1
nohup "$PYTHON" "$ROOT/train.py" --config_path "$CONFIG_PATH" --device_target "$DEVICE_TARGET" \
    --device_id "$DEVICE_ID" "$@" >> "$LOG" 2>&1 &
PID=$!
echo "$PID" > "$OUTPUT_DIR/train.pid"
echo "training started (pid $PID); log: $LOG"
echo "follow it with: tail -f $LOG"
