#!/bin/bash
# Data-parallel training on DEVICE_NUM GPUs of this host (NCCL), started by msrun in the
# background; mpirun (OpenMPI) is the alternative, see LAUNCHER below.
#   bash scripts/run_distribute_train_gpu.sh [DEVICE_NUM] [CONFIG_PATH] [--key value ...]
# Example: bash scripts/run_distribute_train_gpu.sh 8 configs/gpu.yaml --batch_size 16
#          LAUNCHER=mpirun bash scripts/run_distribute_train_gpu.sh 8 configs/gpu.yaml
#
# Logs: <output_dir>/msrun_logs/worker_<rank>.log (scheduler.log, and msrun.log for the
# launcher itself, which also echoes rank 0); with mpirun <output_dir>/mpirun_logs/.
# Relative paths (config, --output_dir, --data_path) are relative to the directory the script
# is called from. Select the GPUs with CUDA_VISIBLE_DEVICES.
#
# Data parallelism (the same in every scripts/run_distribute_train*.sh):
#   - batch_size is per device: one step consumes batch_size x DEVICE_NUM sequences (the global
#     batch) and an epoch steps_per_epoch x batch_size x DEVICE_NUM. At step s rank r takes the
#     sequences (s x DEVICE_NUM + r) x batch_size + b, so ranks never share a sequence and the
#     global batch is the one a single process with batch_size x DEVICE_NUM would see.
#   - the learning rate is NOT scaled with the number of devices: pass --lr yourself if you
#     want e.g. the linear scaling rule for the larger global batch.
#   - gradients are averaged over all ranks every step, so all ranks keep identical weights;
#     the logged loss is the average over ranks (the global batch's loss).
#   - validation runs on every rank over the full validation set: identical weights give
#     identical scores, so early stopping and the plateau schedule agree without communication.
#   - only rank 0 writes the run directory (config.yaml, log.csv, history.json, ckpt/) and
#     prints progress; the other ranks' logs hold MindSpore's messages only.
#   - stopping: kill the launcher (kill <pid in <output_dir>/train.pid>; msrun then ends all
#     workers) and continue from the last epoch's checkpoint with --resume auto.
# Several hosts (msrun): run the script on every host with the same DEVICE_NUM, NODE_NUM and
# MASTER_PORT, NODE_RANK 0..NODE_NUM-1 and MASTER_ADDR = host 0's address (see
# run_distribute_train_cpu.sh for an example); the job has DEVICE_NUM x NODE_NUM ranks.
# Environment: PYTHON (default python3); LAUNCHER (msrun, the default, or mpirun); MSRUN
#   (default msrun, else $PYTHON -m mindspore.parallel.cluster.run); NODE_NUM (default 1),
#   NODE_RANK (default 0), MASTER_ADDR (default 127.0.0.1); MASTER_PORT (default: a free port
#   chosen here; required with NODE_NUM > 1); CLUSTER_TIME_OUT (seconds to wait for all
#   workers, default 600).
usage() {
    echo "Usage: bash scripts/run_distribute_train_gpu.sh [DEVICE_NUM] [CONFIG_PATH] [--key value ...]"
    echo "  DEVICE_NUM     number of GPUs (one training process each) on this host (>= 1)"
    echo "  CONFIG_PATH    a yaml file from configs/ (e.g. configs/gpu.yaml)"
    echo "  --key value    any config override (python -m src.config lists the keys); --distribute and"
    echo "                 --device_target are set by this script"
    echo "  LAUNCHER=mpirun in the environment starts the processes with OpenMPI instead of msrun"
    echo "  several hosts (msrun): NODE_NUM, NODE_RANK, MASTER_ADDR and MASTER_PORT in the environment"
}

source "$(dirname "$0")/common.sh"

check_args() {
    if [ $# -lt 2 ]; then usage; exit 1; fi
    check_count_and_config DEVICE_NUM "$1" "$2"
    case "${LAUNCHER:-msrun}" in msrun|mpirun) ;; *) die "LAUNCHER must be msrun or mpirun, got '$LAUNCHER'";; esac
    shift 2
    reject_launcher_keys "$@"
}

launch_msrun() {
    LOG_DIR="$OUTPUT_DIR/msrun_logs"
    mkdir -p "$LOG_DIR" || exit 1
    find_msrun
    put_python_first_on_path "$LOG_DIR"
    cluster_args "$DEVICE_NUM"
    CMD=("${MSRUN_CMD[@]}" "${CLUSTER_ARGS[@]}" --log_dir="$LOG_DIR" --join=True
         --cluster_time_out="${CLUSTER_TIME_OUT:-600}" --tail_worker_log=0
         "$ROOT/train.py" "${TRAIN_ARGS[@]}")
    LAUNCH_LOG="$LOG_DIR/msrun.log"
    WORKER_LOGS="$LOG_DIR/worker_<rank>.log"
}

launch_mpirun() {
    [ "${NODE_NUM:-1}" = 1 ] || die "NODE_NUM is set: several hosts are supported with LAUNCHER=msrun (for mpirun use a hostfile yourself)"
    command -v mpirun > /dev/null 2>&1 || { echo "error: LAUNCHER=mpirun but mpirun is not on PATH"; exit 1; }
    LOG_DIR="$OUTPUT_DIR/mpirun_logs"
    mkdir -p "$LOG_DIR" || exit 1
    CMD=(mpirun -n "$DEVICE_NUM" --allow-run-as-root --output-filename "$LOG_DIR" --merge-stderr-to-stdout
         "$PYTHON" "$ROOT/train.py" "${TRAIN_ARGS[@]}")
    LAUNCH_LOG="$LOG_DIR/mpirun.log"
    WORKER_LOGS="$LOG_DIR/1/rank.<rank>/stdout"
}

check_args "$@"
DEVICE_NUM=$1; CONFIG_PATH=$(realpath "$2"); shift 2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
resolve_output_dir "$CONFIG_PATH" "$@"
TRAIN_ARGS=(--config_path "$CONFIG_PATH" --device_target GPU --distribute true "$@")
if [ "${LAUNCHER:-msrun}" = mpirun ]; then launch_mpirun; else launch_msrun; fi

nohup "${CMD[@]}" > "$LAUNCH_LOG" 2>&1 &
PID=$!
echo "$PID" > "$OUTPUT_DIR/train.pid"
echo "data-parallel training on $DEVICE_NUM GPUs started (${LAUNCHER:-msrun} pid $PID); run directory: $OUTPUT_DIR"
echo "command: ${CMD[*]}"
echo "logs: $WORKER_LOGS (rank 0 writes the run directory); launcher: $LAUNCH_LOG"
echo "follow it with: tail -f $LAUNCH_LOG"
