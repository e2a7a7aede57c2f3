#!/bin/bash
# Ascend 310 inference of an exported ConvLSTM MINDIR on the Moving MNIST test set:
#   preprocess.py (test sequences -> .bin) -> build ascend310_infer -> run it -> postprocess.py (metrics).
#
#   bash scripts/run_infer_310.sh [MINDIR_PATH] [DATA_PATH] [DEVICE_ID]
#
# MINDIR_PATH  model from `python export.py --ckpt_file CKPT --file_format MINDIR --batch_size 1`
# DATA_PATH    mnist_test_seq.npy or the directory holding it
# DEVICE_ID    Ascend 310 device index (default 0)
# Environment: NUM_SEQUENCES (first K test sequences, default 0 = all 10000),
#              EVAL_SPLIT (own data: test, val or all; empty = the model's; all for a file that is not the
#              training data's, e.g. frames of a deployment size: export.py --export_height/--export_width),
#              PRECISION_MODE (e.g. must_keep_origin_dtype; empty = device default force_fp16),
#              ASCEND_HOME (default /usr/local/Ascend), PYTHON (default python3).
# Outputs in the current directory: preprocess_Result/, result_Files/, time_Result/,
# preprocess.log, build.log, infer.log, acc.log and metrics_310.json.
#
# Needs an Ascend 310 host with the CANN toolkit, the MindSpore Ascend wheel (C++ headers and
# libmindspore.so), cmake and gflags.
usage() {
    echo "Usage: bash scripts/run_infer_310.sh [MINDIR_PATH] [DATA_PATH] [DEVICE_ID]"
    echo "  MINDIR_PATH  exported model (python export.py --ckpt_file CKPT --batch_size 1)"
    echo "  DATA_PATH    mnist_test_seq.npy or the directory holding it"
    echo "  DEVICE_ID    Ascend 310 device index (default 0)"
    echo "  env NUM_SEQUENCES=K evaluates the first K test sequences (default all)"
    echo "  env EVAL_SPLIT=all (own data) scores every window of DATA_PATH (default: the model's split)"
}
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; exit 1; fi

get_real_path() {
    if [ "${1:0:1}" == "/" ]; then echo "$1"; else realpath -m "$PWD/$1"; fi
}
MODEL=$(get_real_path "$1")
DATA_PATH=$(get_real_path "$2")
DEVICE_ID=${3:-0}
NUM_SEQUENCES=${NUM_SEQUENCES:-0}
EVAL_SPLIT=${EVAL_SPLIT:-}
PYTHON=${PYTHON:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -f "$MODEL" ]; then echo "error: MINDIR_PATH $MODEL not found (write it with export.py)"; usage; exit 1; fi
if [ ! -e "$DATA_PATH" ]; then echo "error: DATA_PATH $DATA_PATH does not exist (bash download.sh DATA_DIR)"; usage; exit 1; fi
if ! [[ "$DEVICE_ID" =~ ^[0-9]+$ ]]; then echo "error: DEVICE_ID must be a non-negative integer, got '$DEVICE_ID'"; usage; exit 1; fi
if ! [[ "$NUM_SEQUENCES" =~ ^[0-9]+$ ]]; then echo "error: NUM_SEQUENCES must be a non-negative integer, got '$NUM_SEQUENCES'"; exit 1; fi
echo "mindir: $MODEL"
echo "data: $DATA_PATH"
echo "device id: $DEVICE_ID"

setup_ascend_env() {
    ASCEND_HOME=${ASCEND_HOME:-/usr/local/Ascend}
    if [ -f "$ASCEND_HOME/ascend-toolkit/set_env.sh" ]; then
        source "$ASCEND_HOME/ascend-toolkit/set_env.sh"
    elif [ -f "$ASCEND_HOME/latest/set_env.sh" ]; then
        source "$ASCEND_HOME/latest/set_env.sh"
    else
        echo "warning: no CANN set_env.sh under $ASCEND_HOME; assuming the Ascend environment is already set"
    fi
    local ms_lib
    ms_lib=$("$PYTHON" -c "import os, mindspore; print(os.path.join(os.path.dirname(mindspore.__file__), 'lib'))" \
        2>/dev/null) && export LD_LIBRARY_PATH="$ms_lib:$LD_LIBRARY_PATH"
}

# run STEP_NAME LOG command...: run a step, on failure show the end of its log and stop
run_step() {
    local name=$1 log=$2
    shift 2
    if ! "$@" > "$log" 2>&1; then
        echo "error: $name failed; last lines of $log:"
        tail -n 15 "$log"
        exit 1
    fi
}

preprocess_data() {
    rm -rf ./preprocess_Result
    PYTHONPATH="$ROOT" run_step "preprocess" preprocess.log "$PYTHON" "$ROOT/preprocess.py" \
        --data_path "$DATA_PATH" --num_sequences "$NUM_SEQUENCES" --output_dir ./preprocess_Result --mindir_file "$MODEL" \
        ${EVAL_SPLIT:+--eval_split "$EVAL_SPLIT"}
}

compile_app() {
    PYTHON="$PYTHON" run_step "building ascend310_infer" build.log bash "$ROOT/ascend310_infer/build.sh"
}

infer() {
    rm -rf ./result_Files ./time_Result
    mkdir -p ./result_Files ./time_Result
    run_step "inference" infer.log "$ROOT/ascend310_infer/out/main" --mindir_path="$MODEL" \
        --input0_path=./preprocess_Result/input --result_path=./result_Files --time_path=./time_Result \
        --device_id="$DEVICE_ID" --precision_mode="${PRECISION_MODE:-}"
}

cal_acc() {
    PYTHONPATH="$ROOT" run_step "postprocess" acc.log "$PYTHON" "$ROOT/postprocess.py" \
        --result_path ./result_Files --preprocess_path ./preprocess_Result --output_dir .
}

setup_ascend_env
preprocess_data
echo "preprocess done (preprocess.log)"
compile_app
echo "build done (build.log)"
infer
echo "inference done (infer.log): $(grep 'ms per sequence' infer.log)"
cal_acc
cat acc.log
