#!/usr/bin/env bash
# gpu_acceptance.sh OUT_DIR [--dry-run] [--caffe-bundle PATH]
#
# One prepared run of every GPU path of the harness, for a lent GPU machine with nothing to fetch (one
# H200: python3 with torch+CUDA, nvidia-ml-py, onnxruntime and OpenCV without CUDA, ncu; no nsys, no
# Docker, no network). It needs only this checkout (the harness runs from it through PYTHONPATH).
#
# Steps, each under its own time limit; on a GPU the limits add up to 300 s, so even hung steps cannot take
# the run past five minutes (--dry-run: one network at B=1 on the CPU; 82 s on the 2-core development VM
# under a load average of 5, limits adding up to 135 s):
#   env       versions of Python, torch/CUDA/cuDNN, ONNX Runtime, OpenCV, the driver, ncu; harness doctor
#   poller    benchmarks/poller_rate.py: achieved NVML rate at 50 Hz and 1 kHz, latency perturbation
#   energy    benchmarks/energy_sources.py: counter vs integrated instant vs integrated averaged power
#   bench     3 zoo networks x every backend available on the device x every PyTorch mode, B=1 and 16,
#             short windows; torch.compile on one network at B=1 (each configuration in a fresh worker)
#   memory    the fresh-worker check: device memory at each window's start does not grow across
#             configurations, and no process memory of ours exists before a network is loaded
#   profile   a PyTorch-profiler capture and an ncu capture (one iteration, three networks) through
#             `harness profile`, with attribution (and the Table V metrics from ncu)
#   report    `harness report` of this run: Table III's kernel columns and Table V from those profiles
#   caffe     with --caffe-bundle PATH (docker/caffe-bundle.sh; carried to the GPU machine in an ignored
#             folder of the checkout): the bundle's own tests and doctor, then Caffe on the GPU (12 networks
#             at B=1 and 4, both engines; the paper's batch sweep for two networks; verify against PyTorch;
#             ncu of Caffe forwards). It has its own 420 s limit, beyond the five minutes above.
#
# OUT_DIR receives at most 8 files: summary.md, acceptance.log, doctor.json, poller.txt, energy.txt,
# results.tar.gz (the results directory with the profile records, and the report built from them) and
# captures.tar.gz (the raw profiler captures).
set -uo pipefail

usage() { echo "usage: $0 OUT_DIR [--dry-run] [--caffe-bundle PATH]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
OUT=$1
shift
DRY=0
BUNDLE=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --dry-run) DRY=1 ;;
    --caffe-bundle) [[ $# -ge 2 ]] || usage; BUNDLE=$2; shift ;;
    *) usage ;;
  esac
  shift
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
mkdir -p "$OUT" || exit 2
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-acceptance.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RESULTS=$WORK/results
mkdir -p "$RESULTS"
export HARNESS_CACHE_DIR=$WORK/cache
LOG=$OUT/acceptance.log
SUMMARY=$OUT/summary.md
: >"$LOG"
START=$(date +%s)

harness() { "$PY" -m harness "$@"; }
export PY REPO OUT WORK RESULTS LOG BUNDLE
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }
note() { echo "$*" >>"$SUMMARY"; }

# step NAME LIMIT_S COMMAND...: run one step under a time limit, log it, one summary line for it
step() {
  local name=$1 limit=$2 t0 status
  shift 2
  t0=$(date +%s)
  log "step $name (limit ${limit}s): $*"
  # timeout signals the step's whole process group; the harness kills its running worker on SIGTERM
  timeout --kill-after=10 "$limit" bash -c "$*" >>"$LOG" 2>&1
  status=$?
  local took=$(($(date +%s) - t0))
  if [[ $status -eq 0 ]]; then
    note "- **$name**: ok (${took} s)"
  elif [[ $status -eq 124 || $status -eq 137 ]]; then
    note "- **$name**: TIMED OUT after ${limit} s (what it finished is kept)"
  else
    note "- **$name**: FAILED, exit $status (${took} s; see acceptance.log)"
  fi
  return 0
}

skip() { note "- **$1**: skipped: $2"; log "step $1 skipped: $2"; }

GPU=0
if [[ $DRY -eq 0 ]] && "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  GPU=1
fi
if [[ $DRY -eq 0 && $GPU -eq 0 ]]; then
  echo "gpu_acceptance: no CUDA GPU visible to $PY's torch; use --dry-run on a machine without one" >&2
  exit 2
fi

{
  echo "# GPU acceptance run"
  echo
  echo "- started: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname); git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- mode: $([[ $DRY -eq 1 ]] && echo 'dry run (CPU, one network at B=1)' || echo 'GPU')"
  echo
  echo "## Steps"
} >"$SUMMARY"

# ---- env --------------------------------------------------------------------------------------
versions() {
  "$PY" - <<'EOF'
import importlib, platform
print("python", platform.python_version())
for name in ("numpy", "torch", "onnxruntime", "cv2", "pynvml", "pandas", "yaml", "rich"):
    try:
        m = importlib.import_module(name)
        print(name, getattr(m, "__version__", "?"))
    except Exception as exc:
        print(name, "MISSING", exc)
try:
    import torch
    print("torch cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "gpus", torch.cuda.device_count())
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        print(f"  cuda:{i} {p.name} cc {p.major}.{p.minor} {p.total_memory / 2**30:.1f} GiB uuid {p.uuid}")
except Exception as exc:
    print("torch cuda: ", exc)
try:
    import onnxruntime as ort
    print("onnxruntime providers", ort.get_available_providers())
except Exception:
    pass
try:
    import cv2
    print("opencv cuda devices", cv2.cuda.getCudaEnabledDeviceCount())
except Exception as exc:
    print("opencv cuda:", exc)
EOF
  command -v nvidia-smi >/dev/null && nvidia-smi -L
  command -v ncu >/dev/null && ncu --version | tail -n 1
  return 0
}
doctor_json() { harness doctor --json >"$OUT/doctor.json"; }
export -f harness versions doctor_json
step env 15 versions
step doctor 20 doctor_json

# the identity check of item 1: cuda:0 as the harness maps it (UUID) is the GPU torch calls cuda:0
identity() {
  "$PY" - <<'EOF'
import torch
from harness.measure.devices import identify
ident = identify("cuda:0")
uuid = "GPU-" + str(torch.cuda.get_device_properties(0).uuid)
print("harness cuda:0 ->", ident.uuid, ident.model, "via", ident.mapping, "; torch cuda:0 ->", uuid)
raise SystemExit(0 if ident.uuid == uuid else 1)
EOF
}
export -f identity
if [[ $GPU -eq 1 ]]; then step identity 15 identity; else skip identity "no GPU"; fi

# ---- poller and energy ------------------------------------------------------------------------
poller() { "$PY" "$REPO/benchmarks/poller_rate.py" --seconds 2 >"$OUT/poller.txt" 2>&1; }
energy() { "$PY" "$REPO/benchmarks/energy_sources.py" --seconds 6 --idle 2 >"$OUT/energy.txt" 2>&1; }
export -f poller energy
if [[ $GPU -eq 1 ]]; then
  step poller 22 poller
  step energy 18 energy
else
  skip poller "no GPU"
  skip energy "no GPU"
  echo "skipped: no GPU" >"$OUT/poller.txt"
  echo "skipped: no GPU" >"$OUT/energy.txt"
fi

# ---- bench ------------------------------------------------------------------------------------
# word lists (exported as strings: each step runs in its own bash under `timeout`)
if [[ $GPU -eq 1 ]]; then
  DEVICE=cuda:0
  NETS="squeezenet_v1.1 mobilenet_v1 googlenet"
  BATCHES=1,16
  BENCH_LIMIT=125
  PROFILE_LIMIT=55
  QUICK="--set warmup_iters=3 --set warmup_s=0.2 --set min_iters=10 --set min_s=0.3 --set min_window_s=0.5
    --set idle_s=0.2 --set poll_hz=100"
else
  DEVICE=cpu
  NETS=squeezenet_v1.1
  BATCHES=1
  BENCH_LIMIT=75
  PROFILE_LIMIT=25
  QUICK="--set warmup_iters=1 --set warmup_s=0 --set min_iters=2 --set min_s=0 --set min_window_s=0 --set idle_s=0"
fi
FIRST_NET=${NETS%% *}
export GPU DEVICE NETS BATCHES QUICK FIRST_NET
TORCH_MODES=$("$PY" -c "
from harness.backends.base import get_backend
print(','.join(m for m in get_backend('pytorch').modes('$DEVICE') if m != 'compile'))")
OTHERS=$("$PY" -c "
from harness.measure.sweep import available_backends
print(','.join(b for b in available_backends('$DEVICE') if b != 'pytorch'))")
export TORCH_MODES OTHERS
# shellcheck disable=SC2086 # NETS and QUICK are word lists
bench_all() {
  harness bench $NETS --device "$DEVICE" --backend pytorch --mode "$TORCH_MODES" --batch "$BATCHES" \
    --out "$RESULTS" $QUICK
  if [[ -n "$OTHERS" ]]; then
    harness bench $NETS --device "$DEVICE" --backend "$OTHERS" --batch "$BATCHES" --out "$RESULTS" $QUICK
  fi
  harness bench "$FIRST_NET" --device "$DEVICE" --backend pytorch --mode compile --batch 1 --out "$RESULTS" $QUICK
  return 0  # a configuration that is not ok is a record, read by the summary below
}
export -f bench_all
note "  - pytorch modes: $TORCH_MODES; other backends on $DEVICE: ${OTHERS:-none}"
step bench "$BENCH_LIMIT" bench_all

# ---- the fresh-worker memory check ------------------------------------------------------------
memory_check() {
  "$PY" - "$RESULTS" <<'EOF'
import sys
from harness.results.store import read_results
records = [r for r in read_results([sys.argv[1]]).records if r.config.device.startswith("cuda") and r.status == "ok"]
starts = [r.memory.device_used_start_bytes for r in records if r.memory.device_used_start_bytes is not None]
ours = [r.key for r in records if r.memory.process_device_start_bytes]
if not starts:
    print("no GPU record with memory at window start"); raise SystemExit(1)
spread = (max(starts) - min(starts)) / 2**20
print(f"{len(records)} GPU records: device memory used at window start {min(starts) / 2**20:.0f}..{max(starts) / 2**20:.0f} MiB "
      f"(spread {spread:.0f} MiB); configurations with our own process memory before loading: {len(ours)}")
raise SystemExit(0 if spread < 64 and not ours else 1)
EOF
}
export -f memory_check
if [[ $GPU -eq 1 ]]; then step memory 10 memory_check; else skip memory "no GPU"; fi

# ---- profile ----------------------------------------------------------------------------------
# each profile's own --timeout (below the step's limit) lets the harness report a hung profiler itself
profile_all() {
  harness profile "$FIRST_NET" --backend pytorch --tool torch --device "$DEVICE" --iters 1 --out "$RESULTS" \
    --timeout 20
  if [[ $GPU -eq 1 ]]; then
    local net
    for net in $NETS; do
      harness profile "$net" --backend pytorch --tool ncu --device "$DEVICE" --iters 1 --out "$RESULTS" --timeout 25
    done
  fi
}
export -f profile_all
step profile "$PROFILE_LIMIT" profile_all
[[ $GPU -eq 1 ]] || note "  - ncu: skipped: no GPU"

# ---- Caffe on the GPU (option) ------------------------------------------------------------------
caffe_steps() {
  local root=$WORK/caffe
  mkdir -p "$root" && tar -xzf "$BUNDLE" -C "$root" || return 1
  export CAFFE_ROOT=$root/caffe
  [[ -f "$CAFFE_ROOT/harness-build.env" ]] || { echo "no caffe/harness-build.env in $BUNDLE"; return 1; }
  HARNESS_CAFFE_BUNDLE=$BUNDLE HARNESS_BUNDLE_PYTHON=$PY "$PY" -m pytest -q -p no:cacheprovider \
    "$REPO/tests/test_caffe_bundle.py"
  harness doctor  # its "on the GPU" line runs a cuDNN convolution on cuda:0
  # shellcheck disable=SC2086 # QUICK is a word list
  harness bench all --device "$DEVICE" --backend caffe --mode cudnn,caffe --batch 1,4 --out "$RESULTS" $QUICK
  # shellcheck disable=SC2086
  harness bench squeezenet_v1.1 inception_v2 --device "$DEVICE" --backend caffe --out "$RESULTS" $QUICK
  harness verify squeezenet_v1.1 googlenet --device "$DEVICE" --backends caffe,pytorch
  local net
  for net in squeezenet_v1.1 mobilenet_v1 googlenet; do
    harness profile "$net" --backend caffe --tool ncu --device "$DEVICE" --iters 1 --out "$RESULTS" --timeout 60
  done
}
export -f caffe_steps
if [[ -n "$BUNDLE" ]]; then
  if [[ $GPU -eq 1 ]]; then step caffe 420 caffe_steps; else skip caffe "no GPU"; fi
fi

# ---- the report: Table III's kernel columns and Table V from this run's profiles ------------------
report() { harness report "$RESULTS" -o "$WORK/report"; }
export -f report
step report 15 report

# ---- summary of the records -------------------------------------------------------------------
{
  echo
  echo "## Records"
  "$PY" - "$RESULTS" <<'EOF'
import collections, sys
from harness.results.store import read_results
merged = read_results([sys.argv[1]])
counts = collections.Counter(r.status for r in merged.records)
print(f"{len(merged.records)} configurations: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
print()
print("| network | backend | mode | device | B | status | median ms | ci (coverage) | energy J/forward | power source | note |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in merged.records:
    c, lat, e = r.config, r.latency, r.energy
    ms = f"{lat.median_s * 1e3:.3f}" if lat else "-"
    ci = f"{lat.ci_low_s * 1e3:.3f}..{lat.ci_high_s * 1e3:.3f} ({lat.ci_coverage:.2f})" if lat and lat.ci_coverage is not None else "-"
    ej = f"{e.energy_per_forward_j:.4f}" if e and e.energy_per_forward_j else "-"
    src = f"{e.power_source}/{e.energy_source}" if e else "-"
    note = (r.message or "")[:80].replace("|", "/")
    print(f"| {c.network} | {c.backend} | {c.mode} | {c.device} {c.hardware or ''} | {c.batch} | {r.status} | {ms} | {ci} | {ej} | {src} | {note} |")
for line in merged.warnings():
    print(f"\n{line}")
EOF
  echo
  echo "- finished after $(($(date +%s) - START)) s"
} >>"$SUMMARY" 2>>"$LOG"

# the records (results, profile records, the report) and the raw profiler captures, one archive each
archived=(results)
[[ -d "$WORK/report" ]] && archived+=(report)
tar -czf "$OUT/results.tar.gz" -C "$WORK" --exclude=results/profiles/captures "${archived[@]}" 2>>"$LOG"
mkdir -p "$RESULTS/profiles/captures"
tar -czf "$OUT/captures.tar.gz" -C "$RESULTS/profiles" captures 2>>"$LOG"
log "done in $(($(date +%s) - START)) s; $OUT holds: $(ls "$OUT" | tr '\n' ' ')"
exit 0
