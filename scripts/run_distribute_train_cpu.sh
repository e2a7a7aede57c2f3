#!/bin/bash
# Data-parallel training on CPU: WORKER_NUM processes on this host started by msrun, gradients
# averaged through MindSpore's own TCP collectives. It exercises the distributed code path
# without accelerators; it does not make training faster than one process on the same cores.
#   bash scripts/run_distribute_train_cpu.sh [WORKER_NUM] [CONFIG_PATH] [--key value ...]
# Example: bash scripts/run_distribute_train_cpu.sh 2 configs/cpu_small.yaml --epochs 1
#
# Runs in the foreground (msrun --join True) and exits with the job's status.
# Logs: <output_dir>/msrun_logs/worker_<rank>.log and scheduler.log; rank 0's log is also
# shown on the console. Relative paths (config, --output_dir, --data_path) are relative to the
# directory the script is called from.
#
# Data parallelism (the same in every scripts/run_distribute_train*.sh):
#   - batch_size is per device: one step consumes batch_size x WORKER_NUM sequences (the global
#     batch) and an epoch steps_per_epoch x batch_size x WORKER_NUM. At step s rank r takes the
#     sequences (s x WORKER_NUM + r) x batch_size + b, so ranks never share a sequence and the
#     global batch is the one a single process with batch_size x WORKER_NUM would see.
#   - the learning rate is NOT scaled with the number of devices: pass --lr yourself if you
#     want e.g. the linear scaling rule for the larger global batch.
#   - gradients are averaged over all ranks every step, so all ranks keep identical weights;
#     the logged loss is the average over ranks (the global batch's loss).
#   - validation runs on every rank over the full validation set: identical weights give
#     identical scores, so early stopping and the plateau schedule agree without communication.
#   - only rank 0 writes the run directory (config.yaml, log.csv, history.json, ckpt/) and
#     prints progress; the other ranks' logs hold MindSpore's messages only.
#   - stopping: ending msrun (Ctrl-C) kills all workers at once; continue from the last
#     epoch's checkpoint with --resume auto.
# Environment: PYTHON (default python3); MSRUN (default msrun, else $PYTHON -m
#   mindspore.parallel.cluster.run); MASTER_PORT (default: a free port chosen here);
#   CLUSTER_TIME_OUT (seconds to wait for all workers to join, default 300).
usage() {
    echo "Usage: bash scripts/run_distribute_train_cpu.sh [WORKER_NUM] [CONFIG_PATH] [--key value ...]"
    echo "  WORKER_NUM     number of training processes on this host (>= 1)"
    echo "  CONFIG_PATH    a yaml file from configs/ (e.g. configs/cpu_small.yaml)"
    echo "  --key value    any config override (python -m src.config lists the keys); --distribute and"
    echo "                 --device_target are set by this script"
}

source "$(dirname "$0")/common.sh"

check_args() {
    if [ $# -lt 2 ]; then usage; exit 1; fi
    if ! [[ "$1" =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ]; then die "WORKER_NUM must be a positive integer, got '$1'"; fi
    if [ ! -f "$2" ]; then die "config file $2 not found"; fi
    shift 2
    reject_launcher_keys "$@"
}

check_args "$@"
WORKER_NUM=$1; CONFIG_PATH=$(realpath "$2"); shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
resolve_output_dir "$CONFIG_PATH" "$@"
LOG_DIR="$OUTPUT_DIR/msrun_logs"
mkdir -p "$LOG_DIR" || exit 1
find_msrun
MASTER_PORT=${MASTER_PORT:-$(free_port)}
put_python_first_on_path "$LOG_DIR"

CMD=("${MSRUN_CMD[@]}" --worker_num="$WORKER_NUM" --local_worker_num="$WORKER_NUM" --master_addr=127.0.0.1
     --master_port="$MASTER_PORT" --log_dir="$LOG_DIR" --join=True --cluster_time_out="${CLUSTER_TIME_OUT:-300}"
     --tail_worker_log=0
     "$ROOT/train.py" --config_path "$CONFIG_PATH" --device_target CPU --distribute true "$@")
echo "data-parallel training on $WORKER_NUM CPU workers; run directory: $OUTPUT_DIR"
echo "logs: $LOG_DIR/worker_<rank>.log (rank 0 writes the run directory and is shown below)"
echo "command: ${CMD[*]}"
"${CMD[@]}"
STATUS=$?
if [ $STATUS -ne 0 ]; then
    echo "distributed training failed (exit $STATUS); see $LOG_DIR/worker_*.log and $LOG_DIR/scheduler.log"
else
    echo "distributed training finished; run directory: $OUTPUT_DIR"
fi
exit $STATUS
