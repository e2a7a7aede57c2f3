#!/bin/bash
# Helpers shared by the launchers in scripts/ (sourced, not run). The caller defines usage()
# and sets ROOT (repository root) and PYTHON before calling the functions that need them.

die() {
    echo "error: $1"
    usage
    exit 1
}

is_count() {
    [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ]
}

# the first two arguments of the msrun launchers: a process count named $1 ($2) and a config file ($3)
check_count_and_config() {
    is_count "$2" || die "$1 must be a positive integer, got '$2'"
    [ -f "$3" ] || die "config file $3 not found"
}

# the distributed launchers set these keys themselves
reject_launcher_keys() {
    local arg
    for arg in "$@"; do
        case "$arg" in
            --distribute|--distribute=*|--device_target|--device_target=*|--device-target|--device-target=*)
                die "$arg is set by this script; remove it";;
        esac
    done
}

# OUTPUT_DIR := the run directory of CONFIG_PATH plus the overrides (absolute, created); this
# also validates the config and the overrides before anything is started
resolve_output_dir() {
    local config=$1
    shift
    OUTPUT_DIR=$(PYTHONPATH="$ROOT" "$PYTHON" -m src.config --get output_dir --config_path "$config" "$@" 2>&1) \
        || { echo "$OUTPUT_DIR"; exit 1; }
    mkdir -p "$OUTPUT_DIR" || exit 1
    OUTPUT_DIR=$(realpath "$OUTPUT_DIR")
}

# MSRUN_CMD := $MSRUN, msrun on PATH, or the module behind it
find_msrun() {
    if command -v "${MSRUN:-msrun}" > /dev/null 2>&1; then
        MSRUN_CMD=("${MSRUN:-msrun}")
    elif "$PYTHON" -c "import mindspore.parallel.cluster.run" > /dev/null 2>&1; then
        MSRUN_CMD=("$PYTHON" -m mindspore.parallel.cluster.run)
    else
        echo "error: msrun not found (set MSRUN, or install mindspore >= 2.3 for $PYTHON)"
        exit 1
    fi
}

free_port() {
    "$PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}

# msrun starts every process as `python <script>`, with the python found on PATH; put a
# one-line wrapper first on PATH so the workers run the interpreter this script was given
put_python_first_on_path() {
    local dir="$1/.python" interpreter
    interpreter=$(command -v "$PYTHON") || { echo "error: python interpreter '$PYTHON' not found"; exit 1; }
    mkdir -p "$dir" || exit 1
    printf '#!/bin/sh\nexec "%s" "$@"\n' "$interpreter" > "$dir/python" && chmod +x "$dir/python" || exit 1
    export PATH="$dir:$PATH"
}

# Several hosts (msrun launchers): NODE_NUM hosts (default 1), this host's NODE_RANK (0..NODE_NUM-1,
# default 0) and MASTER_ADDR (the address of host 0, which runs msrun's scheduler; default
# 127.0.0.1) come from the environment; every host starts LOCAL_NUM workers. Sets
# CLUSTER_ARGS (msrun's cluster options) and WORKER_TOTAL. MASTER_PORT must be given when
# NODE_NUM > 1 (every host must name the same port).
cluster_args() {
    local local_num=$1 nodes=${NODE_NUM:-1} node_rank=${NODE_RANK:-0} addr=${MASTER_ADDR:-127.0.0.1} port
    is_count "$nodes" || die "NODE_NUM must be a positive integer, got '$nodes'"
    [[ "$node_rank" =~ ^[0-9]+$ ]] && [ "$node_rank" -lt "$nodes" ] \
        || die "NODE_RANK must be an integer in [0, NODE_NUM - 1] = [0, $((nodes - 1))], got '$node_rank'"
    if [ "$nodes" -gt 1 ] && [ -z "$MASTER_PORT" ]; then
        die "NODE_NUM is $nodes: set MASTER_PORT (the same free port on every host)"
    fi
    port=${MASTER_PORT:-$(free_port)}
    WORKER_TOTAL=$((local_num * nodes))
    CLUSTER_ARGS=(--worker_num="$WORKER_TOTAL" --local_worker_num="$local_num" --master_addr="$addr"
                  --master_port="$port" --node_rank="$node_rank")
}
