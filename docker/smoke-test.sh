#!/usr/bin/env bash
# smoke-test.sh OUT_DIR [--gpu-arch SM] : build the harness image and use it the way a user does.
#
#   bash docker/smoke-test.sh /tmp/smoke                 # the CPU image (CPU_ONLY=1): what CI runs
#   bash docker/smoke-test.sh /tmp/smoke --gpu-arch 90   # the GPU image, Caffe compiled for sm_90 only
#
# One line per step, then a last line naming the image's size, the build time and the records written. Steps:
#   docker  a docker client with BuildKit and a running daemon; as root, docker.io is installed and dockerd started
#           when they are missing (dockerd is left running, with the build cache)
#   base    the Debian 12 image to build from: BASE when set, else made here from Debian's packages
#           (docker/local-base.sh harness-base:bookworm; an existing one is reused)
#   torch   (CPU image) where PyTorch's CPU build comes from: the pinned wheel (.ci/constraints-cpu.txt) for
#           Python 3.11 when one is in TORCH_WHEEL_DIRS (default: the directories of PIP_FIND_LINKS), handed to
#           the build through docker/wheels/; else PyTorch's CPU index
#   build   docker build -f docker/Dockerfile (CPU_ONLY=1, or with --gpu-arch the GPU image with CUDA_ARCH=SM),
#           WITH_NCU=0 (Nsight Compute comes from NVIDIA's apt repository, which CI machines may not reach)
#   secret  the CA bundle given to the build as the secret `ca` is in no layer of the image
#   cuda    the CPU image holds no CUDA library; the GPU image one copy of each, all in the NVIDIA wheels of /opt/venv
#   bench   docker run --rm -v OUT_DIR/results:/results IMAGE bench squeezenet_v1.1 mobilenet_v1 --batch 1
#           records every backend (caffe, pytorch, onnxruntime, opencv) `ok` for both networks; with --gpu-arch
#           the Caffe records say the container's Caffe is the GPU build, run in CPU mode (engine CAFFE)
#   doctor  docker run --rm IMAGE doctor exits 0, every backend is available and Caffe loads; with --gpu-arch,
#           Caffe is the GPU + cuDNN build for SM and loaded its CUDA libraries from the NVIDIA wheels
#   verify  docker run --rm IMAGE verify squeezenet_v1.1 exits 0 (every backend computes Caffe's outputs)
#   report  harness report (in the image) on what the container wrote, into OUT_DIR/report
#   owner   every file under OUT_DIR/results and OUT_DIR/report belongs to the calling user (run as root: to the
#           user the directories were given to, so that the entrypoint's switch of user is exercised)
# Logs go to OUT_DIR/logs/. The verdicts on what the container wrote are docker/smoke-check.py's, run in the
# image, so the host needs only bash and Docker.
#
# Exit status: 0 every step did what it says; 1 a step failed; 2 bad arguments; 77 no Docker engine can be
# started here (then nothing was tested, and the one line says why).
#
# Environment (optional):
#   BASE              the base image (default: made by docker/local-base.sh, see `base`)
#   IMAGE             the tag to build (default harness:smoke-cpu, or harness:smoke-smSM)
#   NO_CACHE=1        build without BuildKit's layer cache (docker build --no-cache), as on a fresh machine
#   DOCKER            the docker client (default: the first of docker, /usr/bin/docker that can use BuildKit)
#   HARNESS_BUILD_CA  the CA bundle given to the build as the secret `ca` (default: this host's
#                     /etc/ssl/certs/ca-certificates.crt, so a build behind a TLS-intercepting proxy that the
#                     host trusts works; empty: no secret)
#   TORCH_CPU_INDEX   (CPU image) the index torch comes from when no local wheel is found (default: the
#                     Dockerfile's, PyTorch's CPU index)
#   TORCH_WHEEL_DIRS  (CPU image) directories to look for the torch wheel in (default: PIP_FIND_LINKS's)
set -uo pipefail

usage() { echo "usage: $0 OUT_DIR [--gpu-arch SM]   (SM: e.g. 90; see the header)" >&2; exit 2; }
out="" gpu_arch=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --gpu-arch) [[ $# -ge 2 ]] || usage; gpu_arch=$2; shift 2 ;;
    --gpu-arch=*) gpu_arch=${1#--gpu-arch=}; shift ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "smoke-test: unknown option $1" >&2; usage ;;
    *) [[ -z "$out" ]] || { echo "smoke-test: one OUT_DIR only (got $out and $1)" >&2; usage; }; out=$1; shift ;;
  esac
done
[[ -n "$out" ]] || usage
if [[ -n "$gpu_arch" && ! "$gpu_arch" =~ ^[1-9][0-9]{1,2}[a-z]?$ ]]; then
  echo "smoke-test: --gpu-arch takes one SM number such as 90 or 120 (got '$gpu_arch')" >&2
  exit 2
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
logs=$out/logs
mkdir -p "$logs"
export DOCKER_BUILDKIT=1
if [[ -n "$gpu_arch" ]]; then
  variant="GPU image, Caffe for sm_$gpu_arch" image=${IMAGE:-harness:smoke-sm$gpu_arch}
else
  variant="CPU image (CPU_ONLY=1)" image=${IMAGE:-harness:smoke-cpu}
fi
readonly networks=(squeezenet_v1.1 mobilenet_v1) backends=caffe,pytorch,onnxruntime,opencv
failed=()
build_s="?" size="?" records="no records"

step_start=$SECONDS
say() {  # say VERDICT STEP DETAIL : one line, with the seconds since the last step ended
  echo "smoke-test: $1 $2: $3 ($((SECONDS - step_start)) s)"
  [[ "$1" == FAIL ]] && failed+=("$2")
  step_start=$SECONDS
}
finish() {
  local verdict=PASS
  [[ ${#failed[@]} -eq 0 ]] || verdict="FAILED (${failed[*]})"
  echo "smoke-test: $verdict: $variant $image, $size, built in $build_s s, $records; logs in $logs"
  [[ ${#failed[@]} -eq 0 ]]
  exit $?
}

# ---- docker: a client that can use BuildKit, and a daemon ---------------------------------------------------------
buildkit_client() {  # buildkit_client CLIENT : docker < 23 has BuildKit built in; newer clients need buildx
  local version
  version=$("$1" version -f '{{.Client.Version}}' 2>/dev/null) || version=$("$1" --version 2>/dev/null |
    sed -n 's/^Docker version \([0-9][0-9.]*\).*/\1/p')
  [[ -n "$version" ]] && { ((${version%%.*} < 23)) || "$1" buildx version >/dev/null 2>&1; }
}
pick_client() {
  local candidate
  for candidate in ${DOCKER:-} "$(command -v docker 2>/dev/null)" /usr/bin/docker; do
    [[ -n "$candidate" && -x "$candidate" ]] && buildkit_client "$candidate" && { echo "$candidate"; return 0; }
  done
  return 1
}
skip() {
  echo "smoke-test: skipped: $1; nothing was tested"
  exit 77
}
docker=$(pick_client)
started=""
if [[ -z "$docker" && $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  { apt-get install -y -qq docker.io || { apt-get update -qq && apt-get install -y -qq docker.io; }; } \
    >"$logs/apt-docker.log" 2>&1 ||
    { say FAIL docker "docker.io could not be installed: $(tail -n 1 "$logs/apt-docker.log") (log: $logs/apt-docker.log)"; finish; }
  started="docker.io installed"
  docker=$(pick_client)
fi
[[ -n "$docker" ]] || skip "no docker client with BuildKit (docker < 23, or buildx) and not root to install docker.io"
if ! "$docker" info >/dev/null 2>&1; then
  [[ $(id -u) -eq 0 ]] && command -v dockerd >/dev/null || skip "no Docker daemon runs and this user cannot start dockerd"
  dockerd >"$logs/dockerd.log" 2>&1 &
  for _ in $(seq 60); do
    "$docker" info >/dev/null 2>&1 && break
    kill -0 $! 2>/dev/null || break
    sleep 1
  done
  "$docker" info >/dev/null 2>&1 || skip "dockerd cannot start here: $(tail -n 1 "$logs/dockerd.log")"
  started="${started:+$started, }dockerd started (pid $!, left running; log $logs/dockerd.log)"
fi
say ok docker "$docker $("$docker" version -f 'client {{.Client.Version}}, daemon {{.Server.Version}}' 2>/dev/null)${started:+; $started}"

# ---- base ---------------------------------------------------------------------------------------------------------
if [[ -n "${BASE:-}" ]]; then
  base=$BASE
  say ok base "$base (given)"
else
  base=harness-base:bookworm
  if DOCKER=$docker bash "$repo/docker/local-base.sh" "$base" >"$logs/base.log" 2>&1; then
    say ok base "$base, Debian 12 made locally from Debian's packages by docker/local-base.sh ($(tail -n 1 "$logs/base.log" | sed 's/^local-base: //'))"
  else
    say FAIL base "docker/local-base.sh $base failed: $(tail -n 1 "$logs/base.log")"
    finish
  fi
fi

# ---- torch (CPU image) --------------------------------------------------------------------------------------------
build_args=(--build-arg "BASE=$base" --build-arg WITH_NCU=0)
[[ "${NO_CACHE:-0}" == 1 ]] && build_args+=(--no-cache)
if [[ -n "$gpu_arch" ]]; then
  build_args+=(--build-arg CPU_ONLY=0 --build-arg "CUDA_ARCH=$gpu_arch")
else
  build_args+=(--build-arg CPU_ONLY=1)
  pin=$(sed -n 's/^torch==\([0-9][0-9.]*\).*/\1/p' "$repo/.ci/constraints-cpu.txt")
  wheel=""
  for dir in ${TORCH_WHEEL_DIRS-${PIP_FIND_LINKS:-}}; do
    dir=${dir#file://}
    [[ -d "$dir" ]] || continue
    wheel=$(compgen -G "$dir/torch-$pin+cpu-cp311-cp311-*linux*_x86_64.whl" | head -n 1) && break
  done
  rm -f "$repo"/docker/wheels/*.whl
  if [[ -n "$wheel" ]]; then
    cp "$wheel" "$repo/docker/wheels/"
    build_args+=(--build-arg TORCH_CPU_INDEX=)
    say ok torch "$(basename "$wheel") from $(dirname "$wheel") (local wheel via docker/wheels/, TORCH_CPU_INDEX empty: PyTorch's index not used)"
  else
    [[ -n "${TORCH_CPU_INDEX:-}" ]] && build_args+=(--build-arg "TORCH_CPU_INDEX=$TORCH_CPU_INDEX")
    say ok torch "torch==$pin from ${TORCH_CPU_INDEX:-the CPU index of PyTorch, the default TORCH_CPU_INDEX}"
  fi
fi

# ---- build --------------------------------------------------------------------------------------------------------
ca=${HARNESS_BUILD_CA-/etc/ssl/certs/ca-certificates.crt}
[[ -n "$ca" && ! -s "$ca" ]] && ca=""
[[ -n "$ca" ]] && build_args+=(--secret "id=ca,src=$ca")
start=$SECONDS
if "$docker" build --progress=plain -f "$repo/docker/Dockerfile" -t "$image" "${build_args[@]}" "$repo" \
  >"$logs/build.log" 2>&1; then
  build_s=$((SECONDS - start))
  size=$("$docker" image inspect -f '{{.Size}}' "$image" | awk '{printf "%.2f GB", $1 / 1e9}')
  say ok build "$image: $size, $build_s s (BuildKit cache: $(grep -c ' CACHED$' "$logs/build.log") steps cached); WITH_NCU=0 (no Nsight Compute)${ca:+; secret ca=$ca}"
else
  say FAIL build "docker build failed after $((SECONDS - start)) s: $(grep -E 'ERROR|error:' "$logs/build.log" | tail -n 1) (log: $logs/build.log)"
  finish
fi

# ---- secret: in no layer ------------------------------------------------------------------------------------------
# extra-ca.sh writes the system's bundle plus the secret to a temporary file during a RUN; neither that file nor
# the secret may be in any layer. Looked for by size and SHA-256 in every layer's directory (overlay2, as root),
# else in the image's final filesystem.
if [[ -n "$ca" ]]; then
  system=$("$docker" run --rm --entrypoint cat "$image" /etc/ssl/certs/ca-certificates.crt | sha256sum | cut -d' ' -f1)
  system_bytes=$("$docker" run --rm --entrypoint cat "$image" /etc/ssl/certs/ca-certificates.crt | wc -c)
  secret=$(sha256sum <"$ca" | cut -d' ' -f1)
  combined=$({ "$docker" run --rm --entrypoint cat "$image" /etc/ssl/certs/ca-certificates.crt; cat "$ca"; } |
    sha256sum | cut -d' ' -f1)
  bytes=$(wc -c <"$ca")
  layers=$("$docker" image inspect -f '{{.GraphDriver.Data.LowerDir}}:{{.GraphDriver.Data.UpperDir}}' "$image" 2>/dev/null)
  IFS=: read -ra dirs <<<"$layers"
  if [[ ${#dirs[@]} -gt 0 && -r "${dirs[0]}" ]]; then
    where="${#dirs[@]} layers"
    found=$(find "${dirs[@]}" -type f \( -size "${bytes}c" -o -size "$((bytes + system_bytes))c" \) -print0 |
      xargs -0 -r sha256sum | awk -v a="$secret" -v b="$combined" -v s="$system" \
        '($1 == a && a != s) || $1 == b {print $2}')
  else
    where="the final filesystem (the layers need root)"
    found=$("$docker" run --rm --entrypoint bash "$image" -c \
      "find / -xdev -type f \\( -size ${bytes}c -o -size $((bytes + system_bytes))c \\) -print0 | xargs -0 -r sha256sum" |
      awk -v a="$secret" -v b="$combined" -v s="$system" '($1 == a && a != s) || $1 == b {print $2}')
  fi
  if [[ -n "$found" ]]; then
    say FAIL secret "the CA bundle given as secret is in the image: $(echo "$found" | head -n 3 | tr '\n' ' ')"
  elif [[ "$secret" == "$system" ]]; then
    say ok secret "the secret equals the image's own CA bundle: nothing secret to find (looked in $where)"
  else
    say ok secret "neither the secret ($bytes bytes) nor the bundle built from it is in $where"
  fi
fi

# what the container writes, owned by the calling user (created here, not by docker run as root). Run as root, the
# directories are given to a user (nobody, 65534), as a user's own results directory is, so that the entrypoint's
# switch to the directory's owner is what the owner step checks, on CI too.
rm -rf "$out/results" "$out/report" || { echo "smoke-test: cannot remove the earlier $out/results and $out/report" >&2; exit 2; }
mkdir -p "$out/results" "$out/report"
owner_uid=$(id -u)
if [[ $owner_uid -eq 0 ]]; then
  owner_uid=65534
  chown "$owner_uid:$owner_uid" "$out/results" "$out/report"
fi
check() {  # check CHECK ARGS... : docker/smoke-check.py in the image, the results and report mounted read-only
  "$docker" run --rm -v "$out/results:/results:ro" -v "$out/report:/report:ro" -v "$out/logs:/logs:ro" \
    -v "$repo/docker/smoke-check.py:/usr/local/lib/smoke-check.py:ro" --entrypoint python "$image" \
    /usr/local/lib/smoke-check.py "$@" 2>&1 | tail -n 1
  return "${PIPESTATUS[0]}"
}

# ---- cuda: one copy of the CUDA libraries, or none --------------------------------------------------------------------
if verdict=$(check cuda-libraries / ${gpu_arch:+--gpu}); then
  say ok cuda "$verdict"
else
  say FAIL cuda "$verdict"
fi

in_image() {  # in_image LOG DOCKER-RUN-ARGS... : docker run --rm ARGS, output to LOG
  local log=$1
  shift
  "$docker" run --rm "$@" >"$log" 2>&1
}

# ---- bench, doctor, verify, report: as a user runs them -----------------------------------------------------------
if in_image "$logs/bench.log" -v "$out/results:/results" "$image" bench "${networks[@]}" --batch 1; then
  verdict=$(check records /results --networks "$(IFS=,; echo "${networks[*]}")" --backends "$backends" --batch 1 \
    ${gpu_arch:+--gpu-build}) && status=ok || status=FAIL
  records=${verdict%%;*}
  records=${records%% (*}
  say $status bench "$verdict"
else
  say FAIL bench "exit status $? (log: $logs/bench.log): $(tail -n 1 "$logs/bench.log")"
  records="$(cat "$out"/results/*.jsonl 2>/dev/null | wc -l) records"
fi

if in_image "$logs/doctor.log" "$image" doctor && "$docker" run --rm "$image" doctor --json >"$logs/doctor.json" 2>/dev/null; then
  verdict=$(check doctor /logs/doctor.json --backends "$backends" ${gpu_arch:+--gpu-arch "$gpu_arch"}) && status=ok || status=FAIL
  say $status doctor "$verdict"
else
  say FAIL doctor "exit status not 0 (log: $logs/doctor.log): $(tail -n 1 "$logs/doctor.log")"
fi

if in_image "$logs/verify.log" "$image" verify squeezenet_v1.1; then
  pairs=$(grep -oE '^ +[a-z]+ vs [a-z]+' "$logs/verify.log" | sed 's/^ *//' | sort -u | paste -sd, - | sed 's/,/, /g')
  say ok verify "squeezenet_v1.1: $(grep -cE ' yes$' "$logs/verify.log") of $(grep -cE ' (yes|no)$' "$logs/verify.log") blobs within tolerance ($pairs), $(grep -E '^ *=> ' "$logs/verify.log" | tail -n 1 | sed 's/^ *//')"
else
  say FAIL verify "exit status not 0 (log: $logs/verify.log): $(tail -n 1 "$logs/verify.log")"
fi

if in_image "$logs/report.log" -v "$out/results:/results" -v "$out/report:/report" "$image" report /results -o /report; then
  verdict=$(check report /report) && status=ok || status=FAIL
  say $status report "$verdict"
else
  say FAIL report "exit status not 0 (log: $logs/report.log): $(tail -n 1 "$logs/report.log")"
fi

# ---- owner --------------------------------------------------------------------------------------------------------
others=$(find "$out/results" "$out/report" ! -user "$owner_uid" | head -n 3)
total=$(find "$out/results" "$out/report" -type f | wc -l)
whose=$([[ $owner_uid -eq $(id -u) ]] && echo "$(id -un) (uid $owner_uid)" || echo "the directories' owner (uid $owner_uid; run as root)")
if [[ -z "$others" ]]; then
  say ok owner "all $total files under results/ and report/ belong to $whose"
else
  say FAIL owner "not owned by uid $owner_uid: $(echo "$others" | tr '\n' ' ')"
fi
finish
