#!/usr/bin/env bash
# Download the wheels the GPU machine lacks into benchmarks/gpu_wheels/ (ignored by git), to be carried
# there for benchmarks/gpu_check.sh (docs/gpu.md).
#
#   bash benchmarks/fetch_gpu_wheels.sh [DEST]           # download into DEST, then check the size
#   bash benchmarks/fetch_gpu_wheels.sh --check [DEST]   # only check the size
#
# That machine runs Python 3.12 on x86_64 Linux with torch, CuPy, ONNX Runtime (CPU), scikit-image and
# pytest, and reaches no package registry; of colorrt's dependencies it lacks PyAV. onnxruntime-gpu,
# TensorRT and DALI are hundreds of MiB each, over what can travel: their tests skip there.
# Everything that travels (the working tree plus the carried wheels) must stay under LIMIT_MIB (60;
# the device tool refuses more than 64): the script fails, saying so, when it would not.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PACKAGES=("av==18.1.0") # the PyAV the project is tested with; an abi3 wheel (cp311-abi3) serves 3.12
LIMIT_MIB=${GPU_CARRY_LIMIT_MIB:-60}
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64)
PY=${PYTHON:-$REPO/.venv/bin/python}
[[ -x $PY ]] || PY=python3

CHECK_ONLY=0
if [[ ${1:-} == --check ]]; then
    CHECK_ONLY=1
    shift
fi
DEST=${1:-$REPO/benchmarks/gpu_wheels}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

check_size() {
    local wheels=0 tree=0 total
    if compgen -G "$DEST/*.whl" >/dev/null; then
        wheels=$(stat -c %s "$DEST"/*.whl | awk '{ s += $1 } END { print s + 0 }')
    fi
    if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then # what the device tool sends besides
        tree=$(cd "$REPO" && git ls-files -co --exclude-standard -z | xargs -0 -r stat -c %s 2>/dev/null |
            awk '{ s += $1 } END { print s + 0 }')
    fi
    total=$((wheels + tree))
    echo "wheels in $DEST: $(mib "$wheels") MiB; working tree: $(mib "$tree") MiB;" \
        "carried in all: $(mib "$total") MiB (limit $LIMIT_MIB MiB)"
    if ((total >= LIMIT_MIB * 1048576)); then
        echo "fetch_gpu_wheels: $(mib "$total") MiB would travel, over the $LIMIT_MIB MiB limit:" \
            "drop a wheel from PACKAGES or large untracked files from the working tree" >&2
        return 1
    fi
}

if ((!CHECK_ONLY)); then
    platform_args=()
    for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
    fresh=$(mktemp -d)
    trap 'rm -rf "$fresh"' EXIT
    "$PY" -m pip download --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platform_args[@]}" -d "$fresh" "${PACKAGES[@]}"
    mkdir -p "$DEST"
    rm -f "$DEST"/*.whl # one version of each: two would stop the install there
    mv "$fresh"/*.whl "$DEST"/
    for wheel in "$DEST"/*.whl; do
        echo "$(mib "$(stat -c %s "$wheel")") MiB  $(basename "$wheel")"
    done
fi
check_size
