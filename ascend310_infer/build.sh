#!/bin/bash
# Build the Ascend 310 inference app into ascend310_infer/out/main.
# Needs: cmake >= 3.14, a C++17 compiler, gflags (dev package), and the MindSpore Ascend
# wheel (headers + lib/libmindspore.so) importable by $PYTHON (default python3), with the
# Ascend CANN environment set up (scripts/run_infer_310.sh does that).
set -e
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
MINDSPORE_PATH=$("$PYTHON" -c "import os, mindspore; print(os.path.dirname(mindspore.__file__))" 2>/dev/null) || {
    echo "error: $PYTHON cannot import mindspore; install the MindSpore Ascend wheel" >&2
    exit 1
}
if [ ! -d "$MINDSPORE_PATH/include" ]; then
    echo "error: $MINDSPORE_PATH has no include/ directory (the C++ headers come with the Ascend wheel)" >&2
    exit 1
fi
rm -rf out
mkdir out
cd out
cmake .. -DMINDSPORE_PATH="$MINDSPORE_PATH"
make -j"$(nproc 2>/dev/null || echo 2)"
echo "built $(pwd)/main"
