#!/usr/bin/env bash
# Fetch the two data files of the Moving MNIST experiment into DATA_DIR:
#   train-images-idx3-ubyte.gz  MNIST training images (digits for the on-the-fly training sequences)
#   mnist_test_seq.npy          the published Moving MNIST test set, uint8 (20, 10000, 64, 64)
# Files already present and valid are kept; downloads go to FILE.part and are renamed only after
# they pass verification, so the script is safe to interrupt and re-run.
#
# usage: bash download.sh DATA_DIR
# Environment: MNIST_URL / MOVING_MNIST_URL replace the download addresses (e.g. a local mirror);
#              PYTHON selects the interpreter used for content checks (default: python3).
set -u

MNIST_FILE=train-images-idx3-ubyte.gz
MNIST_SIZE=9912422
MNIST_MD5=f68b3c2dcbeaaa9fbdd348bbdeb94873
TEST_FILE=mnist_test_seq.npy
TEST_BYTES=819200000  # pixel bytes: 20 x 10000 x 64 x 64 (plus an .npy header of under 4 KiB)
MNIST_URLS=${MNIST_URL:-"http://yann.lecun.com/exdb/mnist/$MNIST_FILE https://ossci-datasets.s3.amazonaws.com/mnist/$MNIST_FILE"}
TEST_URLS=${MOVING_MNIST_URL:-"http://www.cs.toronto.edu/~nitish/unsupervised_video/$TEST_FILE"}
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-python3}

if [ $# -ne 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    echo "usage: bash download.sh DATA_DIR   (fetches $MNIST_FILE and $TEST_FILE into DATA_DIR)" >&2
    exit 2
fi
DATA_DIR=$1
mkdir -p "$DATA_DIR" || { echo "error: cannot create directory $DATA_DIR" >&2; exit 1; }
DATA_DIR=$(cd "$DATA_DIR" && pwd)  # absolute: the content checks run from the repository root

file_size() { wc -c < "$1" | tr -d ' '; }

# Content checks with the project's own readers (skipped with a note if python/numpy is unavailable).
py_check() {
    local kind=$1 path=$2
    if ! (cd "$REPO_DIR" && "$PY" -c "import numpy" >/dev/null 2>&1); then
        echo "note: $PY with numpy not found; checked $path by size only" >&2
        return 0
    fi
    (cd "$REPO_DIR" && "$PY" - "$kind" "$path" <<'EOF'
import sys
from src.errors import DataError
kind, path = sys.argv[1], sys.argv[2]
try:
    if kind == "idx":
        from src.data.idx import read_idx_images
        images = read_idx_images(path)
        assert images.shape == (60000, 28, 28), f"shape {images.shape}, expected (60000, 28, 28)"
    else:
        import os
        from src.data.sequences import open_test_file
        frames = open_test_file(path, image_size=64).file._array  # the memory-mapped (T, N, H, W) array
        assert frames.shape == (20, 10000, 64, 64), f"shape {frames.shape}, expected (20, 10000, 64, 64)"
        extra = os.path.getsize(path) - frames.offset - frames.nbytes
        assert extra == 0, f"{extra} bytes after the array: not a clean .npy file"
except (DataError, AssertionError, ValueError, OSError, EOFError) as err:
    print(f"{path}: {err}", file=sys.stderr)
    sys.exit(1)
EOF
    )
}

# verify KIND PATH: size, md5 (MNIST, when md5sum exists) and content.
verify() {
    local kind=$1 path=$2 size
    [ -f "$path" ] || return 1
    size=$(file_size "$path")
    if [ "$kind" = idx ]; then
        [ "$size" = "$MNIST_SIZE" ] || { echo "$path: $size bytes, expected $MNIST_SIZE" >&2; return 1; }
        if command -v md5sum >/dev/null 2>&1; then
            [ "$(md5sum "$path" | cut -d' ' -f1)" = "$MNIST_MD5" ] || { echo "$path: md5 mismatch" >&2; return 1; }
        fi
    else
        if [ "$size" -lt "$TEST_BYTES" ] || [ "$size" -gt $((TEST_BYTES + 4096)) ]; then
            echo "$path: $size bytes, expected $TEST_BYTES plus a small header" >&2
            return 1
        fi
    fi
    py_check "$kind" "$path"
}

# fetch URL OUT: 0 on success, 1 if the server could not be reached or refused.
fetch() {
    local url=$1 out=$2
    if command -v curl >/dev/null 2>&1; then
        curl -fL --silent --show-error --connect-timeout 15 --max-time 1800 --retry 2 -o "$out" "$url"
    elif command -v wget >/dev/null 2>&1; then
        wget -q --timeout=15 --tries=2 -O "$out" "$url"
    else
        echo "error: neither curl nor wget is installed" >&2
        return 1
    fi
}

# get KIND NAME "URLS": keep a valid file, else download (URL by URL) to NAME.part, verify, rename.
get() {
    local kind=$1 name=$2 urls=$3 dest="$DATA_DIR/$2" part="$DATA_DIR/$2.part" reached=0 url
    if [ -f "$dest" ]; then
        if verify "$kind" "$dest"; then
            echo "ok: $dest already present and valid"
            return 0
        fi
        echo "$dest is present but invalid; downloading it again"
    fi
    for url in $urls; do
        echo "downloading $url"
        rm -f "$part"
        if fetch "$url" "$part"; then
            reached=1
            if verify "$kind" "$part"; then
                mv -f "$part" "$dest"
                echo "ok: $dest"
                return 0
            fi
            echo "$url: downloaded file failed verification; trying the next address" >&2
        fi
    done
    rm -f "$part"
    if [ "$reached" = 0 ]; then
        echo "error: could not download $name (no network connection, or the servers are unreachable): copy $name into $DATA_DIR by hand and re-run this script to verify it" >&2
    else
        echo "error: every download of $name failed verification: copy a good $name into $DATA_DIR by hand and re-run this script to verify it" >&2
    fi
    return 1
}

status=0
get idx "$MNIST_FILE" "$MNIST_URLS" || status=1
get npy "$TEST_FILE" "$TEST_URLS" || status=1
if [ "$status" = 0 ]; then
    echo "data ready in $DATA_DIR"
fi
exit $status
