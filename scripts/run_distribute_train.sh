#!/bin/bash
# Data-parallel training on Ascend 910 with an HCCL rank table: one background process per
# device of this host, each with its own working directory and log.
#   bash scripts/run_distribute_train.sh [RANK_TABLE_FILE] [CONFIG_PATH] [RANK_SIZE] [--key value ...]
# Example: bash scripts/run_distribute_train.sh /path/hccl_8p.json configs/ascend.yaml 8
#
# RANK_TABLE_FILE: the HCCL rank table (json, e.g. from hccl_tools.py), RANK_SIZE: the number of
# devices in it. The i-th process of this host runs with DEVICE_ID=i and RANK_ID=r=RANK_START_ID+i
# in <output_dir>/rank_<r>/ and logs to <output_dir>/rank_<r>/train.log (its pid in train.pid).
# Several hosts (a rank table with several server_list entries): run the script on every host
# with the same table and RANK_SIZE; it starts this host's share: the devices of the server_list
# entry whose server_id is SERVER_ID (default: the entry whose server_id is one of this host's
# addresses, `hostname -I`), with their rank_id values. DEVICE_NUM (processes on this host) and
# RANK_START_ID (first rank of this host) override that; with a one-server table the defaults
# are RANK_SIZE devices from rank 0.
# Relative paths (rank table, config, --output_dir, --data_path, --resume) are relative to the
# directory the script is called from; they are passed on as absolute paths.
# msrun also works on Ascend (msrun --worker_num N --local_worker_num N ... train.py
# --distribute true --device_target Ascend, as in run_distribute_train_gpu.sh); the rank table
# is the model-zoo convention kept here.
#
# Data parallelism (the same in every scripts/run_distribute_train*.sh):
#   - batch_size is per device: one step consumes batch_size x RANK_SIZE sequences (the global
#     batch) and an epoch steps_per_epoch x batch_size x RANK_SIZE. At step s rank r takes the
#     sequences (s x RANK_SIZE + r) x batch_size + b, so ranks never share a sequence and the
#     global batch is the one a single process with batch_size x RANK_SIZE would see.
#   - the learning rate is NOT scaled with the number of devices: pass --lr yourself if you
#     want e.g. the linear scaling rule for the larger global batch.
#   - gradients are averaged over all ranks every step, so all ranks keep identical weights;
#     the logged loss is the average over ranks (the global batch's loss).
#   - validation runs on every rank over the full validation set: identical weights give
#     identical scores, so early stopping and the plateau schedule agree without communication.
#   - only rank 0 writes the run directory (config.yaml, log.csv, history.json, ckpt/) and
#     prints progress; the other ranks' logs hold MindSpore's messages only.
#   - stopping: kill every rank (kill $(cat <output_dir>/rank_*/train.pid)) and continue from
#     the last epoch's checkpoint with --resume auto.
# Environment: PYTHON (default python3), SERVER_ID, DEVICE_NUM, RANK_START_ID.
usage() {
    echo "Usage: bash scripts/run_distribute_train.sh [RANK_TABLE_FILE] [CONFIG_PATH] [RANK_SIZE] [--key value ...]"
    echo "  RANK_TABLE_FILE  HCCL rank table (json) of the devices to use"
    echo "  CONFIG_PATH      a yaml file from configs/ (e.g. configs/ascend.yaml)"
    echo "  RANK_SIZE        number of devices in the rank table (>= 1)"
    echo "  --key value      any config override (python -m src.config lists the keys); --distribute and"
    echo "                   --device_target are set by this script"
}

source "$(dirname "$0")/common.sh"

check_args() {
    if [ $# -lt 3 ]; then usage; exit 1; fi
    if [ ! -f "$1" ]; then die "rank table file $1 not found"; fi
    if [ ! -f "$2" ]; then die "config file $2 not found"; fi
    is_count "$3" || die "RANK_SIZE must be a positive integer, got '$3'"
    shift 3
    reject_launcher_keys "$@"
}

# the number of devices listed in the rank table (empty if it cannot be read)
rank_table_size() {
    "$PYTHON" -c "import json, sys; t = json.load(open(sys.argv[1]));
print(sum(len(s.get('device', [])) for s in t.get('server_list', [])))" "$1" 2>/dev/null
}

config_value() {
    PYTHONPATH="$ROOT" "$PYTHON" -m src.config --get "$1" --config_path "$CONFIG_PATH" "${OVERRIDES[@]}" 2>&1
}

# every rank runs in its own directory: give the path keys (from the config or the command
# line) as absolute paths, resolved against the caller's directory
absolute_path_args() {
    local key value
    PATH_ARGS=()
    for key in output_dir data_path resume; do
        value=$(config_value "$key") || { echo "$value"; exit 1; }
        if [ -n "$value" ] && [ "$value" != auto ]; then
            PATH_ARGS+=("--$key" "$(realpath -m "$value")")
        fi
    done
}

# the overrides without the path keys (they are added back as absolute paths)
drop_path_keys() {
    KEPT=()
    while [ $# -gt 0 ]; do
        local name="${1%%=*}"
        case "${name//-/_}" in
            __output_dir|__data_path|__resume)
                if [[ "$1" != *=* ]] && [ $# -gt 1 ] && [[ "$2" != --* ]]; then shift; fi
                shift;;
            *) KEPT+=("$1"); shift;;
        esac
    done
}

start_rank() {
    local local_id=$1 rank_id=$2 dir="$OUTPUT_DIR/rank_$2"
    mkdir -p "$dir" || exit 1
    (
        cd "$dir" || exit 1
        export DEVICE_ID=$local_id RANK_ID=$rank_id
        nohup "$PYTHON" "$ROOT/train.py" --config_path "$CONFIG_PATH" --device_target Ascend --distribute true \
            "${KEPT[@]}" "${PATH_ARGS[@]}" > "$dir/train.log" 2>&1 &
        echo $! > "$dir/train.pid"
    )
    echo "rank $rank_id (device $local_id) started (pid $(cat "$dir/train.pid")); log: $dir/train.log"
}

# "DEVICE_COUNT FIRST_RANK" of this host's server_list entry: the one named SERVER_ID, else the one
# whose server_id is an address of this host, else (one server only) that server; empty if none
local_share() {
    "$PYTHON" - "$1" "${SERVER_ID:-}" "$(hostname -I 2>/dev/null)" <<'PY' 2>/dev/null
import json, sys
servers = json.load(open(sys.argv[1])).get("server_list", [])
wanted, addresses = sys.argv[2], sys.argv[3].split()
chosen = [s for s in servers if s.get("server_id") == wanted] if wanted else \
    [s for s in servers if s.get("server_id") in addresses] or (servers if len(servers) == 1 else [])
if len(chosen) == 1:
    ranks = [int(d["rank_id"]) for d in chosen[0].get("device", [])]
    print(len(ranks), min(ranks))
PY
}

check_local_share() {
    is_count "$DEVICE_NUM" || die "DEVICE_NUM must be a positive integer, got '$DEVICE_NUM'"
    [[ "$RANK_START_ID" =~ ^[0-9]+$ ]] || die "RANK_START_ID must be a non-negative integer, got '$RANK_START_ID'"
    if [ $((RANK_START_ID + DEVICE_NUM)) -gt "$RANK_SIZE" ]; then
        die "RANK_START_ID + DEVICE_NUM ($RANK_START_ID + $DEVICE_NUM) exceeds RANK_SIZE $RANK_SIZE"
    fi
}

check_args "$@"
RANK_TABLE_FILE=$(realpath "$1"); CONFIG_PATH=$(realpath "$2"); RANK_SIZE=$3; shift 3
OVERRIDES=("$@")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
TABLE_SIZE=$(rank_table_size "$RANK_TABLE_FILE")
if [ -n "$TABLE_SIZE" ] && [ "$TABLE_SIZE" != "$RANK_SIZE" ]; then
    die "RANK_SIZE is $RANK_SIZE but the rank table $RANK_TABLE_FILE lists $TABLE_SIZE devices"
fi
read -r SHARE_DEVICES SHARE_START <<< "$(local_share "$RANK_TABLE_FILE")"
if [ -n "$SERVER_ID" ] && [ -z "$SHARE_DEVICES" ]; then
    die "SERVER_ID $SERVER_ID is not a server_id of the rank table $RANK_TABLE_FILE"
fi
if [ -z "$SHARE_DEVICES" ] && { [ -z "$DEVICE_NUM" ] || [ -z "$RANK_START_ID" ]; }; then
    die "cannot tell which server of the rank table $RANK_TABLE_FILE this host is: set SERVER_ID (or DEVICE_NUM and RANK_START_ID)"
fi
DEVICE_NUM=${DEVICE_NUM:-$SHARE_DEVICES}
RANK_START_ID=${RANK_START_ID:-$SHARE_START}
check_local_share
absolute_path_args
drop_path_keys "$@"
OUTPUT_DIR=$(config_value output_dir) || { echo "$OUTPUT_DIR"; exit 1; }
mkdir -p "$OUTPUT_DIR" || exit 1
OUTPUT_DIR=$(realpath "$OUTPUT_DIR")

export RANK_TABLE_FILE RANK_SIZE
echo "data-parallel training on $DEVICE_NUM of $RANK_SIZE Ascend devices (rank table $RANK_TABLE_FILE)"
echo "run directory: $OUTPUT_DIR (written by rank 0)"
for ((i = 0; i < DEVICE_NUM; i++)); do
    start_rank "$i" $((RANK_START_ID + i))
done
echo "follow rank $RANK_START_ID with: tail -f $OUTPUT_DIR/rank_$RANK_START_ID/train.log"
