#!/bin/bash
# Data-parallel training on CPU: WORKER_NUM processes per host started by msrun, gradients
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
# Several hosts: run the script on every host with the same WORKER_NUM, NODE_NUM and MASTER_PORT,
# NODE_RANK 0..NODE_NUM-1 and MASTER_ADDR = host 0's address, e.g. on two hosts:
#   host 0: NODE_NUM=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 bash scripts/run_distribute_train_cpu.sh 1 ...
#   host 1: NODE_NUM=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 bash scripts/run_distribute_train_cpu.sh 1 ...
# The job then has WORKER_NUM x NODE_NUM ranks; host k runs ranks k x WORKER_NUM ... and rank 0
# (on host 0) writes the run directory. Each host keeps its workers' logs in its own msrun_logs/.
# Environment: PYTHON (default python3); MSRUN (default msrun, else $PYTHON -m
#   mindspore.parallel.cluster.run); NODE_NUM (default 1), NODE_RANK (default 0), MASTER_ADDR
#   (default 127.0.0.1); MASTER_PORT (default: a free port chosen here; required with NODE_NUM > 1);
#   CLUSTER_TIME_OUT (seconds to wait for all workers to join, default 300).
usage() {
    echo "Usage: bash scripts/run_distribute_train_cpu.sh [WORKER_NUM] [CONFIG_PATH] [--key value ...]"
    echo "  WORKER_NUM     number of training processes on this host (>= 1)"
    echo "  several hosts: NODE_NUM, NODE_RANK, MASTER_ADDR and MASTER_PORT in the environment"
    echo "  CONFIG_PATH    a yaml file from configs/ (e.g. configs/cpu_small.yaml)"
    echo "  --key value    any config override (python -m src.config lists the keys); --distribute and"
    echo "                 --device_target are set by this script"
}

source "$(dirname "$0")/common.sh"

check_args() {
    if [ $# -lt 2 ]; then usage; exit 1; fi
    check_count_and_config WORKER_NUM "$1" "$2"
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
cluster_args "$WORKER_NUM"
put_python_first_on_path "$LOG_DIR"

CMD=("${MSRUN_CMD[@]}" "${CLUSTER_ARGS[@]}" --log_dir="$LOG_DIR" --join=True --cluster_time_out="${CLUSTER_TIME_OUT:-300}"
     --tail_worker_log=0
     "$ROOT/train.py" --config_path "$CONFIG_PATH" --device_target CPU --distribute true "$@")
echo "data-parallel training on $WORKER_NUM CPU workers of $WORKER_TOTAL (host ${NODE_RANK:-0} of ${NODE_NUM:-1}); run directory: $OUTPUT_DIR"
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
