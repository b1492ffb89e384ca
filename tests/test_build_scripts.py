"""The Caffe build scripts: the source manifest and its check, the build's record, `./run`'s decision to
build Caffe, the CUDA toolkit assembled from wheels, and the CI requirement that pycaffe be present.

Tests that need Caffe's source fetch it with ``build-caffe.sh --fetch-source`` (cached after the first
time; CI fetches it anyway to build Caffe) and skip, saying why, when it cannot be fetched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD_CAFFE = REPO / "docker" / "build-caffe.sh"
MANIFEST = REPO / "docker" / "caffe-9b891540.sha256"
COMMIT = "9b891540183ddc834a02b2bd81b31afae71b2153"


def manifest_entries() -> dict[str, str]:
    lines = [line for line in MANIFEST.read_text().splitlines() if not line.startswith("#")]
    return {line[66:]: line[:64] for line in lines}


def run_script(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          cwd=cwd, timeout=timeout, check=False)


# ---- the manifest -------------------------------------------------------------------------------

def test_manifest_covers_the_built_tree_of_the_pinned_commit() -> None:
    entries = manifest_entries()
    assert len(entries) == 699
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in entries.values())
    for needed in ("Makefile", "src/caffe/net.cpp", "src/caffe/proto/caffe.proto", "include/caffe/blob.hpp",
                   "python/caffe/_caffe.cpp", "python/caffe/io.py", "tools/caffe.cpp", "cmake/Cuda.cmake"):
        assert needed in entries
    # the two files in which 99bd997 (Debian's tarball) and 9b891540 differ are left out, and say so
    assert "README.md" not in entries and "scripts/cpp_lint.py" not in entries
    header = MANIFEST.read_text()
    assert COMMIT in header and "README.md" in header and "scripts/cpp_lint.py" in header
    script = BUILD_CAFFE.read_text()
    assert f"readonly CAFFE_COMMIT={COMMIT}" in script


def test_patches_apply_to_files_the_manifest_pins() -> None:
    targets = set()
    for patch in (REPO / "docker" / "patches").glob("*/*.patch"):
        targets |= {line[6:].strip() for line in patch.read_text().splitlines() if line.startswith("+++ b/")}
    assert targets and targets <= set(manifest_entries())


@pytest.fixture(scope="module")
def caffe_source() -> Path:
    proc = run_script(str(BUILD_CAFFE), "--fetch-source", timeout=900)
    if proc.returncode != 0:
        pytest.skip(f"Caffe's source could not be fetched: {proc.stderr.strip().splitlines()[-1:]}")
    return Path(proc.stdout.strip())


def test_fetched_source_passes_the_check_and_a_changed_or_missing_file_fails_it(caffe_source: Path,
                                                                                tmp_path: Path) -> None:
    ok = run_script(str(BUILD_CAFFE), "--check-source", str(caffe_source))
    assert ok.returncode == 0, ok.stderr
    assert "699 files match caffe-9b891540.sha256" in ok.stdout

    tree = tmp_path / "tree"
    shutil.copytree(caffe_source, tree, symlinks=True, copy_function=os.link)
    changed = tree / "src" / "caffe" / "net.cpp"
    text = changed.read_bytes()
    changed.unlink()  # a new file, not an edit through the hard link into the cache
    changed.write_bytes(text.replace(b"Forward", b"Forwrd", 1))
    (tree / "include" / "caffe" / "blob.hpp").unlink()
    bad = run_script(str(BUILD_CAFFE), "--check-source", str(tree))
    assert bad.returncode == 1
    assert "src/caffe/net.cpp: FAILED" in bad.stderr and "include/caffe/blob.hpp" in bad.stderr
    assert "2 of 699 files differ or are missing" in bad.stderr


def test_unreachable_routes_fail_with_one_message(tmp_path: Path) -> None:
    proc = run_script(str(BUILD_CAFFE), "--fetch-source",
                      env={"CAFFE_SRC_CACHE": str(tmp_path / "cache"), "CAFFE_FETCH": "git",
                           "CAFFE_REPO": str(tmp_path / "no-such-repo")})
    assert proc.returncode == 1
    assert "could not fetch Caffe's source by: git" in proc.stderr
    assert not (tmp_path / "cache" / "tree").exists()


# ---- a finished build ---------------------------------------------------------------------------

def built_prefix() -> Path | None:
    root = Path(os.environ.get("CAFFE_ROOT") or "/opt/caffe")
    return root if (root / ".harness-build-stamp").is_file() else None


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text().splitlines())
    return {key: value.strip('"') for key, sep, value in pairs if sep}


@pytest.mark.skipif(built_prefix() is None, reason="no build of docker/build-caffe.sh at CAFFE_ROOT or /opt/caffe")
def test_build_records_its_verified_source_and_reports_itself_built() -> None:
    prefix = built_prefix()
    assert prefix is not None
    info = read_env(prefix / "harness-build.env")
    assert info["CAFFE_COMMIT"] == COMMIT
    assert info["CAFFE_SOURCE"].split()[0] in ("git", "debian", "directory")
    manifest_hash = hashlib.sha256(MANIFEST.read_bytes()).hexdigest()
    assert info["CAFFE_SOURCE_CHECK"] == f"699 files match caffe-9b891540.sha256 (sha256 {manifest_hash})"
    assert "0002-pycaffe-import-skimage-scipy-on-use.patch" in info["CAFFE_PATCHES"].split()
    flags = {"CPU_ONLY": info["CAFFE_CPU_ONLY"], "CAFFE_PREFIX": str(prefix), "SKIP_APT": "1"}
    if info["CAFFE_CPU_ONLY"] == "0":
        pytest.skip("the --is-built check of a GPU build needs its CUDA_HOME")
    assert run_script(str(BUILD_CAFFE), "--is-built", env=flags).returncode == 0
    other = run_script(str(BUILD_CAFFE), "--is-built", env={**flags, "BLAS": "atlas"})
    assert other.returncode == 1


@pytest.mark.skipif(built_prefix() is None, reason="no build of docker/build-caffe.sh at CAFFE_ROOT or /opt/caffe")
def test_generated_caffe_pb2_loads_with_this_interpreters_protobuf() -> None:
    """caffe_pb2.py comes from the distribution's protoc; the protobuf the harness's own environment has
    (through onnx) must load it, e.g. for the worker's engine rewrite."""
    pytest.importorskip("google.protobuf")
    prefix = built_prefix()
    assert prefix is not None
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import caffe_pb2; from google.protobuf import text_format; "
            "n = text_format.Parse('layer { name: \"c\" type: \"Convolution\" "
            "convolution_param { num_output: 2 engine: CAFFE } }', caffe_pb2.NetParameter()); "
            "print(caffe_pb2.ConvolutionParameter.Engine.Name(n.layer[0].convolution_param.engine))")
    proc = subprocess.run([sys.executable, "-c", code, str(prefix / "python" / "caffe" / "proto")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "CAFFE"


def test_pycaffe_is_available_where_required() -> None:
    """CI sets HARNESS_REQUIRE_PYCAFFE=1 after building Caffe: then the pycaffe tests must run, not skip."""
    if os.environ.get("HARNESS_REQUIRE_PYCAFFE") != "1":
        pytest.skip("HARNESS_REQUIRE_PYCAFFE is not set (CI sets it)")
    from harness.backends.caffe.backend import CaffeBackend

    info = CaffeBackend.probe()
    assert info.available, info.reason


# ---- ./run builds Caffe for bench, never for test -----------------------------------------------

FAKE_BUILD = """#!/usr/bin/env bash
echo "build $* CAFFE_PREFIX=$CAFFE_PREFIX" >> "$CALLS"
if [ "${1:-}" = --is-built ]; then exit "${FAKE_IS_BUILT:-1}"; fi
exit "${FAKE_BUILD_STATUS:-0}"
"""
FAKE_HARNESS = """#!/usr/bin/env bash
echo "harness $* CAFFE_ROOT=${CAFFE_ROOT:-}" >> "$CALLS"
"""
FAKE_PYTHON = f"""#!/usr/bin/env bash
if [ "${{1:-}} ${{2:-}}" = "-m pytest" ]; then echo "pytest" >> "$CALLS"; exit 0; fi
exec {sys.executable} "$@"
"""


@pytest.fixture
def fake_checkout(tmp_path: Path) -> Path:
    """A copy of ./run beside a stand-in build-caffe.sh, harness and python that log their calls."""
    root = tmp_path / "checkout"
    (root / "docker").mkdir(parents=True)
    (root / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(REPO / "run", root / "run")
    (root / "pyproject.toml").write_text("")
    for path, text in ((root / "docker" / "build-caffe.sh", FAKE_BUILD), (root / ".venv/bin/harness", FAKE_HARNESS),
                       (root / ".venv/bin/python", FAKE_PYTHON)):
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    stamp = root / ".venv" / ".installed"
    stamp.touch()
    os.utime(stamp, (stamp.stat().st_mtime + 10,) * 2)  # newer than pyproject.toml: no venv setup
    return root


def run_fake(root: Path, *args: str, **env: str) -> list[str]:
    calls = root / "calls.log"
    calls.unlink(missing_ok=True)
    base = {k: v for k, v in os.environ.items() if k not in ("CAFFE_ROOT", "HARNESS_BUILD_CAFFE")}
    proc = subprocess.run(["bash", str(root / "run"), *args], capture_output=True, text=True, timeout=60,
                          env={**base, "CALLS": str(calls), "HOME": str(root / "home"), "XDG_CACHE_HOME": "", **env},
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return calls.read_text().splitlines() if calls.exists() else []


def builds(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("build ") and "--is-built" not in c]


@pytest.mark.skipif(os.geteuid() != 0, reason="the root case builds into /opt/caffe (a non-root case runs below)")
def test_run_bench_builds_caffe_only_when_caffe_is_selected(fake_checkout: Path) -> None:
    assert builds(run_fake(fake_checkout, "bench", "all")) == ["build  CAFFE_PREFIX=/opt/caffe"]
    assert builds(run_fake(fake_checkout, "bench", "all", "--backend", "pytorch,caffe"))
    assert builds(run_fake(fake_checkout, "bench", "--backend=caffe"))
    assert not builds(run_fake(fake_checkout, "bench", "all", "--backend", "pytorch", "--backend", "opencv"))
    assert not builds(run_fake(fake_checkout, "bench", "all", HARNESS_BUILD_CAFFE="0"))
    assert not builds(run_fake(fake_checkout, "bench", "all", CAFFE_ROOT="/somewhere/else"))
    assert not builds(run_fake(fake_checkout, "bench", "--help"))
    already = run_fake(fake_checkout, "bench", "all", FAKE_IS_BUILT="0")
    assert not builds(already) and already[-1].startswith("harness bench all")
    sweep = fake_checkout / "sweep.yaml"
    sweep.write_text("networks: [alexnet]\nbackends: [onnxruntime, pytorch]\n")
    assert not builds(run_fake(fake_checkout, "bench", "--config", str(sweep)))
    sweep.write_text("networks: [alexnet]\nbackends: [caffe]\n")
    assert builds(run_fake(fake_checkout, "bench", "--config", str(sweep)))
    # the test command never builds Caffe
    assert run_fake(fake_checkout, "test", "-q") == ["pytest"]
    assert run_fake(fake_checkout, "analyze", "alexnet") == ["harness analyze alexnet CAFFE_ROOT="]


@pytest.mark.skipif(os.geteuid() != 0, reason="the root case builds into /opt/caffe")
def test_run_bench_reports_a_failed_build_once_and_goes_on(fake_checkout: Path) -> None:
    first = run_fake(fake_checkout, "bench", "all", FAKE_BUILD_STATUS="1")
    assert builds(first) and first[-1].startswith("harness bench all")
    marker = fake_checkout / "home" / ".cache" / "harness" / "caffe-build.failed"
    assert marker.is_file()
    again = run_fake(fake_checkout, "bench", "all", FAKE_BUILD_STATUS="1")
    assert not builds(again) and again[-1].startswith("harness bench all")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="runs ./run as user nobody (needs root and setpriv)")
def test_run_bench_as_a_user_builds_into_the_users_cache(fake_checkout: Path) -> None:
    # A world-readable place (pytest's tmp_path is private to root); /opt/caffe becomes an empty stand-in,
    # since a user's ./run uses a build found there instead of building its own.
    where = Path(tempfile.mkdtemp(prefix="harness-run-user-"))
    try:
        where.chmod(0o755)
        root = where / "checkout"
        shutil.copytree(fake_checkout, root, symlinks=True)
        run = root / "run"
        run.write_text(run.read_text().replace("/opt/caffe", str(where / "opt-caffe")))
        home, calls = where / "home", where / "calls.log"
        home.mkdir()
        calls.touch()
        subprocess.run(["chown", "-R", "nobody", str(where)], check=True)
        proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "bash", str(run),
                               "bench", "all"], capture_output=True, text=True, timeout=60,
                              env={"PATH": os.environ["PATH"], "CALLS": str(calls), "HOME": str(home)}, check=False)
        assert proc.returncode == 0, proc.stderr
        prefix = home / ".cache" / "harness" / "caffe"
        lines = calls.read_text().splitlines()
        assert f"build  CAFFE_PREFIX={prefix}" in lines
        assert lines[-1] == f"harness bench all CAFFE_ROOT={prefix}"
    finally:
        shutil.rmtree(where)


# ---- the CUDA toolkit from wheels ---------------------------------------------------------------

FAKE_PIP = """#!/usr/bin/env bash
# Stand-in for `python -m pip`: lays out what the NVIDIA wheels install (nvidia/cu13, nvidia/cudnn).
[ "$1 $2" = "-m pip" ] || exit 9
[ "$3" = --version ] && exit 0
shift 2
while [ $# -gt 0 ]; do if [ "$1" = --target ]; then t=$2; fi; shift; done
mkdir -p "$t/nvidia/cu13/bin" "$t/nvidia/cu13/include" "$t/nvidia/cu13/lib" "$t/nvidia/cu13/nvvm/bin" \\
  "$t/nvidia/cudnn/include" "$t/nvidia/cudnn/lib" "$t/nvidia_cublas-13.1.0.3.dist-info"
printf '#!/bin/sh\\necho "Cuda compilation tools, release 13.0, V13.0.88"\\n' > "$t/nvidia/cu13/bin/nvcc"
chmod +x "$t/nvidia/cu13/bin/nvcc"
touch "$t/nvidia/cu13/include/cublas_v2.h" "$t/nvidia/cu13/include/curand.h" "$t/nvidia/cudnn/include/cudnn.h" \\
  "$t/nvidia/cu13/lib/libcublas.so.13" "$t/nvidia/cu13/lib/libcudart.so.13" "$t/nvidia/cudnn/lib/libcudnn.so.9"
"""


def test_cuda_toolkit_from_wheels_lays_out_a_cuda_home(tmp_path: Path) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text(FAKE_PIP)
    fake_python.chmod(0o755)
    prefix = tmp_path / "cuda"
    script = str(REPO / "docker" / "cuda-toolkit-from-wheels.sh")
    proc = run_script(script, str(prefix), env={"PYTHON": str(fake_python)})
    assert proc.returncode == 0, proc.stderr
    assert (prefix / "bin" / "nvcc").is_file() and (prefix / "nvvm" / "bin").is_dir()
    for header in ("cublas_v2.h", "curand.h", "cudnn.h"):
        assert (prefix / "include" / header).is_file()
    assert os.readlink(prefix / "lib" / "libcublas.so") == "libcublas.so.13"
    assert os.readlink(prefix / "lib" / "libcudnn.so") == "libcudnn.so.9"
    assert (prefix / "lib64" / "libcudart.so").exists()
    machine = "sbsa" if os.uname().machine == "aarch64" else os.uname().machine
    assert (prefix / "targets" / f"{machine}-linux" / "include" / "cudnn.h").is_file()
    assert not list(prefix.glob(".staging*"))
    again = run_script(script, str(prefix), env={"PYTHON": "/nonexistent"})
    assert again.returncode == 0 and "cached" in again.stderr

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "mine.txt").write_text("keep")
    refused = run_script(script, str(occupied), env={"PYTHON": str(fake_python)})
    assert refused.returncode == 1 and "not empty" in refused.stderr
    assert (occupied / "mine.txt").read_text() == "keep"


def test_scripts_print_usage_on_bad_arguments() -> None:
    assert run_script(str(BUILD_CAFFE), "--bogus").returncode == 2
    assert run_script(str(REPO / "docker" / "cuda-toolkit-from-wheels.sh")).returncode == 2
    assert run_script(str(REPO / "docker" / "caffe-bundle.sh"), "out.zip").returncode == 2
    usage = run_script(str(REPO / "docker" / "apt-source.sh"), "bullseye")
    assert usage.returncode == 2 and "usage:" in usage.stderr
