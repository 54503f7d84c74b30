#!/usr/bin/env bash
# One prepared GPU check for pytest-facebench, in at most ~8 minutes (the budget, 450 s by default):
#   1. env                     nvidia-smi -L, driver, torch/CUDA/cuDNN versions          -> check.log, summary.json
#   2. throughput_pil          bench/throughput.py (a)-(e), fp32 + bf16: model-only, sustained with the GPU's
#                              utilisation sampled, the 6,000-pair task in-process and as a whole pytest
#                              process (cold, warm), the naive pipeline, the demo grid  -> throughput_pil.json
#   3. gpu_tests               the GPU-only tests of tests/ (see below)                  -> gpu_tests.xml
#   4. xdist_grid              pytest benchmarks/ -n 2 --facebench-device cuda (both workers on cuda:0) -> xdist_grid.xml
#   5. compile_speed           bench/compile_speed.py: model-only VGG16 eager vs torch.compile (reduce-overhead =
#                              CUDA graphs, then default), fp32 + bf16, cold compiles, within what is left of the
#                              budget (at most 180 s); optional: skipped, not broken, when < 60 s are left
#                                                                                    -> compile_speed.json
# then bench/device_summary.py writes summary.json and prints the table: figures, targets (PASS/FAIL/MISSING),
# GPU-only test outcomes. Every step runs under `timeout`, capped by what is left of the budget, so a hung
# step cannot eat the others' time, and the summary is always reached.
#
# Exit status: 0 when every step ran and passed (missed targets are reported, not errors), 1 when a step
# broke (failed, timed out, or a required one could not start), 2 for bad arguments, 3 if the summary broke.
#
# GPU-only tests: every test under tests/ marked `@pytest.mark.skipif(<condition or reason naming CUDA/GPU>)`
# (function, class or module `pytestmark`), found by `bench/device_summary.py gpu-tests` from the source, and run
# as their files plus `-k <their names>` (not node ids: a module that skips at collection, e.g. dlib absent, is
# then reported as skipped instead of stopping pytest with exit 4 before the other tests ran).
# Override with DEVICE_CHECK_GPU_TESTS="pytest arguments" (e.g. "tests/engine -k gpu").
#
# Usage:
#   OUT=/some/dir bench/device_check.sh        on the GPU machine (OUT defaults to bench/out/device_check)
#   bench/device_check.sh --dry-run            the same steps at tiny sizes on the CPU (OUT defaults to a
#                                              temp dir); GPU-only tests are reported as skipped; ~2 minutes
# Environment: PYTHON (default python3), DEVICE_CHECK_BUDGET_S (default 450; dry run 1200),
#   DEVICE_CHECK_THROUGHPUT_ARGS (extra bench/throughput.py arguments, e.g. "--sustained 6000"; last wins).
#
# Sizes on the GPU: the issue-3 sizes (2,000 images / 6,000 pairs / 13,000 sustained images, batch 128)
# with 50 timed model-only batches (6,400 images per layout, >= 1 s of GPU work: a stable limit), except the
# naive pipeline, timed on 1,500 pairs and extrapolated to 6,000 (it is linear in pairs, ~10 ms a pair on a
# GPU, so 6,000 would take a minute alone). Estimated cost on an H200 with 16 CPUs (estimates, not yet
# measured there): data generation ~10 s; per precision (a) ~5 s, (b) sustained 13,000 images ~5-10 s,
# task cold+warm ~5 s, (e) the task as two pytest processes ~25 s; naive ~15 s; (d) three grid runs ~40 s;
# GPU tests ~20 s; xdist grid ~40 s: about 4 minutes in all, half the budget. The step timeouts (60/270/90/120 s,
# capped by the budget) leave each step about twice its estimate. The compile step comes last and takes what is
# left (~3 minutes when the others keep to their estimates; each measurement is a fresh process, ~10 s eager,
# an estimated 30-90 s a cold compile): it skips or stops what does not fit, so the check stays within the budget.

set -u -o pipefail

DRY=0
for arg in "$@"; do
  case $arg in
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "device_check.sh: unknown argument '$arg' (expected --dry-run or --help)" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
PY=${PYTHON:-python3}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export FACEBENCH_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # no network: never wait for a download

if [[ -z ${OUT:-} ]]; then
  if (( DRY )); then OUT=$(mktemp -d "${TMPDIR:-/tmp}/device-check.XXXXXX"); else OUT=$ROOT/bench/out/device_check; fi
fi
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/device-check-work.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT
rm -f "$OUT"/{summary.json,check.log,throughput_pil.json,gpu_tests.xml,xdist_grid.xml,compile_speed.json}
rm -f "$OUT"/*.partial
LOG=$OUT/check.log
STEPS=$WORK/steps.tsv
: > "$LOG"
: > "$STEPS"

if (( DRY )); then
  DEVICE=cpu
  BUDGET=${DEVICE_CHECK_BUDGET_S:-1200}
  # VGG16 at 32x32 (its classifier stays full size): the plumbing, not the speed. No loader workers: they
  # cost more than they save on a small CPU. The grid: the weight-free model only, without plots.
  SIZES=(--images 24 --pairs 48 --sustained 24 --naive-pairs 6 --batch-size 8 --model-only-iters 2 --workers 0
         --input-size 32)
  GRID_ARGS=(-k "pixels and (verification or similarity)" --facebench-no-report)
  # generous: no device time is at stake, and a shared CI box can be slow
  T_ENV=90; T_PIL=480; T_GPU=150; T_XDIST=180; T_COMPILE=300
  REQUIRE_CUDA=()
  # the plumbing, not the figures: dynamo captures the tiny VGG16 with its hooks, but the `eager` backend generates
  # no code (a cold inductor compile would take 30-60 s on two cores; tests/engine/test_compile.py runs one)
  COMPILE_ARGS=(--quick --backend eager --batch-size 2 --iters 2 --modes default --precision fp32)
else
  DEVICE=cuda
  BUDGET=${DEVICE_CHECK_BUDGET_S:-450}
  SIZES=(--images 2000 --pairs 6000 --sustained 13000 --naive-pairs 1500 --batch-size 128 --model-only-iters 50)
  GRID_ARGS=()
  T_ENV=60; T_PIL=270; T_GPU=90; T_XDIST=120; T_COMPILE=180
  REQUIRE_CUDA=(--require-cuda)
  COMPILE_ARGS=(--batch-size 128 --modes reduce-overhead default --precision fp32 bf16)
fi
# shellcheck disable=SC2206  # word splitting is the point
SIZES+=(${DEVICE_CHECK_THROUGHPUT_ARGS:-})
RESERVE=15  # seconds kept for the summary
ABORT=""    # set when the machine cannot do the check at all: the remaining steps are not started
START=$SECONDS

say() { printf '%s\n' "$*" | tee -a "$LOG"; }

record() {  # name required rc seconds timeout state note
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$STEPS"
}

# run_step NAME REQUIRED(1|0) TIMEOUT_S MIN_S COMMAND... : run under `timeout`, capped by the budget left;
# a step with less than MIN_S left is not started. Output goes to the log; the end of it is shown on failure.
run_step() {
  local name=$1 required=$2 limit=$3 min_s=$4
  shift 4
  local left=$(( BUDGET - (SECONDS - START) - RESERVE ))
  (( limit > left )) && limit=$left
  if [[ -n $ABORT ]]; then
    record "$name" "$required" "" 0 "$limit" skipped "not started: $ABORT"
    say "[$name] not started: $ABORT"
    return
  fi
  if (( limit < min_s )); then
    record "$name" "$required" "" 0 "$limit" skipped "not started: ${left} s left of the ${BUDGET} s budget, needs ${min_s} s"
    say "[$name] not started: ${left} s left of the ${BUDGET} s budget (needs ${min_s} s)"
    return
  fi
  say "[$name] (timeout ${limit} s) $*"
  printf '===== %s output =====\n' "$name" >> "$LOG"
  local t0 t1 rc
  t0=$(date +%s.%N)
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$WORK/$name.out" >> "$LOG"
  rc=${PIPESTATUS[0]}
  t1=$(date +%s.%N)
  local seconds
  seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  record "$name" "$required" "$rc" "$seconds" "$limit" ran ""
  say "[$name] exit ${rc} after ${seconds} s"
  if (( rc != 0 )); then tail -n 20 "$WORK/$name.out" | sed "s/^/  [$name] /"; fi
}

# The plugin comes from its entry point when pip-installed; from a plain checkout (the GPU machine) name it.
PLUGIN=()
if ! "$PY" -c 'import sys; from importlib.metadata import entry_points
sys.exit(not any(e.name == "facebench" for e in entry_points(group="pytest11")))' 2>/dev/null; then
  PLUGIN=(-p pytest_facebench.plugin)
fi

say "device check: $( (( DRY )) && echo 'DRY RUN on the CPU' || echo 'GPU') in $ROOT; OUT=$OUT; budget ${BUDGET} s"

# 1. the environment
run_step env 1 "$T_ENV" 5 "$PY" bench/device_summary.py env --out "$WORK/env.json" "${REQUIRE_CUDA[@]}"
if (( ! DRY )) && [[ $(tail -n 1 "$STEPS" | cut -f3) != 0 ]]; then
  ABORT="the environment step failed (no CUDA device for torch?): see check.log"
fi

# 2. throughput at the issue-3 sizes (dry run: tiny), with (c) naive, (d) the grid rerun and (e) the task as a
#    whole pytest process
TP=("$PY" bench/throughput.py --device "$DEVICE" --precision fp32 bf16 --data "$WORK/data" "${SIZES[@]}")
run_step throughput_pil 1 "$T_PIL" 30 "${TP[@]}" --decode pil --grid-args "${GRID_ARGS[*]@Q}" \
  --out "$OUT/throughput_pil.json"

# 3. the GPU-only tests: their files, and -k with their names
if [[ -n ${DEVICE_CHECK_GPU_TESTS:-} ]]; then
  read -r -a GPU_TESTS <<< "$DEVICE_CHECK_GPU_TESTS"
else
  mapfile -t GPU_TESTS < <("$PY" bench/device_summary.py gpu-tests tests --pytest-args)
fi
say "GPU-only tests: ${GPU_TESTS[*]:-(none found)}"
if (( ${#GPU_TESTS[@]} )); then
  run_step gpu_tests 1 "$T_GPU" 15 "$PY" -m pytest "${GPU_TESTS[@]}" "${PLUGIN[@]}" -p no:cacheprovider -q -rA \
    --junitxml "$OUT/gpu_tests.xml" -o junit_family=xunit1
elif [[ -n $ABORT ]]; then
  record gpu_tests 1 "" 0 "" skipped "not started: $ABORT"
else
  record gpu_tests 1 5 0 "" ran "no GPU-only test found under tests/"
fi

# 4. the benchmark grid with two xdist workers sharing the one device, on a cold cache
GRID=(-p no:cacheprovider -p no:hypothesispytest "${PLUGIN[@]}" --facebench-device "$DEVICE"
      --facebench-cache "$WORK/xdist/cache" --facebench-out "$WORK/xdist/out" --facebench-no-progress)
run_step xdist_grid 1 "$T_XDIST" 20 "$PY" -m pytest benchmarks/ -n 2 "${GRID[@]}" -q \
  --junitxml "$OUT/xdist_grid.xml" -o junit_family=xunit1 "${GRID_ARGS[@]}"

# 5. torch.compile against eager (optional, last): bench/compile_speed.py keeps to its own budget, 10 s inside the
#    step's timeout (what is left, at most T_COMPILE), skipping or stopping the measurements that do not fit
COMPILE_LEFT=$(( BUDGET - (SECONDS - START) - RESERVE ))
(( COMPILE_LEFT > T_COMPILE )) && COMPILE_LEFT=$T_COMPILE
run_step compile_speed 0 "$T_COMPILE" 60 "$PY" bench/compile_speed.py --device "$DEVICE" "${COMPILE_ARGS[@]}" \
  --budget-s "$(( COMPILE_LEFT - 10 ))" --out "$OUT/compile_speed.json"

# the summary: OUT/summary.json and the table; its exit status is the check's
rm -f "$OUT"/*.partial
SUMMARY=("$PY" bench/device_summary.py summarize --out "$OUT" --work "$WORK" --budget "$BUDGET"
         --wall "$(( SECONDS - START ))")
(( DRY )) && SUMMARY+=(--dry-run)
"${SUMMARY[@]}" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
if (( rc > 1 )); then
  say "device_check.sh: the summary broke (exit $rc); the steps were:"
  tee -a "$LOG" < "$STEPS"
  exit 3
fi
exit "$rc"
