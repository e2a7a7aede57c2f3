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
