#!/usr/bin/env bash
# The whole GPU check of issue 18, as one command run once on a GPU machine (docs/gpu.md).
#
#   bash benchmarks/gpu_check.sh [OUTDIR] [--dry-run] [--python PY] [--budget SECONDS]
#                                [--only STEP,STEP] [--wheels DIR]
#
# Steps, each under its own time limit, cut to what is left of --budget (default 480 s = 8 minutes,
# the summary included); a failed or timed-out step is recorded and the next one runs:
#   env          GPU name, driver, torch / CuPy / ONNX Runtime versions      -> OUTDIR/env.json
#   wheels       installs the carried wheels (benchmarks/gpu_wheels, from fetch_gpu_wheels.sh) with
#                pip --no-index into a scratch folder put on PYTHONPATH; checks that colorrt imports
#   pytest_cuda  pytest -m requires_cuda                                      -> OUTDIR/pytest_cuda.log
#   bench_gpu    benchmarks/bench_gpu.py (kernels' GB/s, FP16 + CUDA graphs) -> OUTDIR/bench_gpu.json
#   film         a 1080p film with audio made here, end to end vs DeOldify-style, decode / model /
#                encode alone                                                 -> OUTDIR/film.json
# then a summary table on stdout and OUTDIR/gpu_check.json (rewritten after every step, so a run
# killed from outside keeps what was done); everything printed goes to OUTDIR/gpu_check.log too.
# --only: rerun these steps (env and wheels always run), keeping the other steps' records in OUTDIR.
# --dry-run: every step on the CPU with tiny sizes (a tiny local wheel is installed; the GPU-only
# steps report "skipped: no CUDA"), so the plumbing is tested without a GPU (tests/test_gpu_check.py).
# Exit status: 0 when no step failed or timed out, 1 otherwise, 2 for bad arguments.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR="$REPO/benchmarks/results/gpu"
DRY=0
PY=python3
BUDGET=480
ONLY=""
WHEELS="$REPO/benchmarks/gpu_wheels"
RESERVE=10 # seconds kept for the summary
STEPS="env wheels pytest_cuda bench_gpu film"
SETUP="env wheels" # always run: the other steps need what they find and install

usage() { sed -n '4,5p' "${BASH_SOURCE[0]}" | sed 's/^#   //; 1s/^/usage: /; 2s/^/       /'; }

while (($#)); do
    case $1 in
    --dry-run) DRY=1 ;;
    --python | --budget | --only | --wheels)
        if (($# < 2)); then
            echo "gpu_check: $1 needs a value" >&2
            usage >&2
            exit 2
        fi
        case $1 in
        --python) PY=$2 ;;
        --budget) BUDGET=$2 ;;
        --only) ONLY=$2 ;;
        --wheels) WHEELS=$2 ;;
        esac
        shift
        ;;
    -h | --help)
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
        exit 0
        ;;
    -*)
        echo "gpu_check: unknown option $1" >&2
        usage >&2
        exit 2
        ;;
    *) OUTDIR=$1 ;;
    esac
    shift
done
if ! [[ $BUDGET =~ ^[0-9]+$ ]] || ((BUDGET < 30)); then
    echo "gpu_check: --budget must be a whole number of seconds >= 30, got '$BUDGET'" >&2
    exit 2
fi
for name in ${ONLY//,/ }; do
    if [[ " $STEPS " != *" $name "* ]]; then
        echo "gpu_check: unknown step '$name' in --only (steps: $STEPS)" >&2
        exit 2
    fi
done
if ! command -v "$PY" >/dev/null; then
    echo "gpu_check: no Python '$PY' (pass --python PATH)" >&2
    exit 2
fi

mkdir -p "$OUTDIR" || exit 2
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/colorrt_gpu_check.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT
LOG="$OUTDIR/gpu_check.log"
CHECK=("$PY" "$REPO/benchmarks/gpu_check.py")
SITE="$WORK/site"
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO" || exit 2

DRY_FLAG=()
((DRY)) && DRY_FLAG=(--dry-run)
[[ -z $ONLY ]] && : >"$LOG"
"${CHECK[@]}" start "$OUTDIR" --budget "$BUDGET" ${ONLY:+--keep} "${DRY_FLAG[@]}" || exit 2
FAILED=0
NO_CUDA="" # why the GPU-only steps are skipped; empty: run them

# run_step NAME LIMIT NEEDS_CUDA DETAILS EXTRA_LOG COMMAND...
run_step() {
    local name=$1 limit=$2 needs_cuda=$3 details=$4 extra=$5
    shift 5
    if [[ -n $ONLY && ",$ONLY," != *",$name,"* && " $SETUP " != *" $name "* ]]; then
        return 0
    fi
    local left=$((BUDGET - SECONDS - RESERVE))
    ((limit > left)) && limit=$left
    echo "== $name (limit ${limit} s)" | tee -a "$LOG"
    if ((needs_cuda)) && [[ -n $NO_CUDA ]]; then
        "${CHECK[@]}" record "$OUTDIR" "$name" skipped --limit "$limit" --reason "$NO_CUDA"
        return 0
    fi
    if ((limit < 5)); then
        "${CHECK[@]}" record "$OUTDIR" "$name" skipped --limit "$limit" --reason "no time left in the budget"
        return 0
    fi
    local start=$SECONDS rc status
    [[ -n $extra ]] && : >"$extra"
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG" ${extra:+"$extra"} "$WORK/$name.out"
    rc=${PIPESTATUS[0]}
    case $rc in
    0) status=ok ;;
    124 | 137) status=timeout ;;
    *) status=failed ;;
    esac
    [[ $status != ok ]] && FAILED=1
    "${CHECK[@]}" record "$OUTDIR" "$name" "$status" --limit "$limit" --seconds $((SECONDS - start)) \
        --exit-code "$rc" --details "$details" --output "$WORK/$name.out" 2>&1 | tee -a "$LOG"
}

run_step env 40 0 "$OUTDIR/env.json" "" "${CHECK[@]}" env --out "$OUTDIR/env.json"
if ((DRY)); then
    NO_CUDA="no CUDA (dry run)"
else
    NO_CUDA=$("${CHECK[@]}" cuda "$OUTDIR/env.json")
fi

if ((DRY)); then
    run_step wheels 45 0 "$WORK/wheels.json" "" "${CHECK[@]}" wheels --folder "$WORK/wheels" --probe \
        --site "$SITE" --out "$WORK/wheels.json"
else
    run_step wheels 45 0 "$WORK/wheels.json" "" "${CHECK[@]}" wheels --folder "$WHEELS" \
        --site "$SITE" --install-colorrt --out "$WORK/wheels.json"
fi
[[ -d $SITE ]] && export PYTHONPATH="$SITE:$PYTHONPATH"

run_step pytest_cuda 120 1 "$OUTDIR/pytest_cuda.log" "$OUTDIR/pytest_cuda.log" \
    "$PY" -m pytest -m requires_cuda -p no:cacheprovider -q --tb=short --durations=10 tests
run_step bench_gpu 120 1 "$OUTDIR/bench_gpu.json" "" \
    "$PY" benchmarks/bench_gpu.py --out "$OUTDIR/bench_gpu.json"
run_step film 210 $((1 - DRY)) "$OUTDIR/film.json" "" \
    "$PY" benchmarks/gpu_film.py --out "$OUTDIR/film.json" --work "$WORK/film" "${DRY_FLAG[@]}"

"${CHECK[@]}" summary "$OUTDIR" --seconds "$SECONDS" 2>&1 | tee -a "$LOG"
exit "$FAILED"
