"""docker/smoke-test.sh and its helpers, as far as they can be exercised without a Docker engine: the smoke test's
arguments and its one-line skip where no engine can start, the verdicts of docker/smoke-check.py on results,
doctor reports and report directories like those the container writes, the build's CA-secret handling
(docker/extra-ca.sh) and the requirement lists the image installs (docker/pyproject-requirements.py).

The real run, the image built and used, is CI's Docker phase (.ci/run runs docker/smoke-test.sh).
"""

from __future__ import annotations

import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness.results.records import Config, Record
from harness.results.store import ResultsStore

REPO = Path(__file__).resolve().parents[1]
SMOKE_TEST = REPO / "docker" / "smoke-test.sh"
NETWORKS = ["squeezenet_v1.1", "mobilenet_v1"]
BACKENDS = ["caffe", "pytorch", "onnxruntime", "opencv"]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), REPO / "docker" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


smoke_check = load("smoke-check")
pyproject_requirements = load("pyproject-requirements")


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_docker(tmp_path: Path) -> dict[str, str]:
    """A PATH whose docker is a client of docker 20.10 with no daemon behind it (every call logged), and whose
    dockerd fails at once, as it does where the kernel lacks what Docker needs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "docker-calls"
    executable(bin_dir / "docker", f"""#!/bin/sh
echo "$*" >>{calls}
case "$1" in
  version) echo 20.10.24 ;;
  --version) echo "Docker version 20.10.24, build 297e128" ;;
  *) echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1 ;;
esac
""")
    executable(bin_dir / "dockerd", "#!/bin/sh\necho 'failed to start daemon: Devices cgroup is not mounted' >&2\n"
                                    "exit 1\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER", "BASE", "IMAGE")}
    return {**env, "PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin", "FAKE_CALLS": str(calls)}


def smoke(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SMOKE_TEST), *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


# ---- smoke-test.sh: arguments and the skip ------------------------------------------------------------------------

@pytest.mark.parametrize("args", [[], ["--gpu-arch"], ["OUT", "--gpu-arch", "sm_90"], ["OUT", "--gpu-arch", "9"],
                                  ["OUT", "OTHER"], ["--bogus", "OUT"], ["OUT", "--gpu-arch=ninety"]])
def test_bad_arguments_exit_2_before_anything_is_done(args: list[str], fake_docker: dict[str, str],
                                                      tmp_path: Path) -> None:
    proc = smoke(*[str(tmp_path / a) if a in ("OUT", "OTHER") else a for a in args], env=fake_docker)
    assert proc.returncode == 2, proc.stderr
    assert "usage:" in proc.stderr or "--gpu-arch takes one SM number" in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / "OUT").exists() and not Path(fake_docker["FAKE_CALLS"]).exists()


def test_help_is_the_header(fake_docker: dict[str, str]) -> None:
    proc = smoke("--help", env=fake_docker)
    assert proc.returncode == 0
    assert proc.stdout.startswith("smoke-test.sh OUT_DIR [--gpu-arch SM]")
    for step in ("docker", "base", "torch", "build", "secret", "cuda", "bench", "doctor", "verify", "report", "owner"):
        assert f"\n  {step} " in proc.stdout


def test_where_no_docker_engine_can_start_it_skips_in_one_line(fake_docker: dict[str, str], tmp_path: Path) -> None:
    proc = smoke(str(tmp_path / "out"), env=fake_docker)
    assert proc.returncode == 77, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("smoke-test: skipped: ")
    assert lines[0].endswith("; nothing was tested")
    if os.geteuid() == 0:  # it tried to start dockerd and names why that failed
        assert "dockerd cannot start here: failed to start daemon: Devices cgroup is not mounted" in lines[0]
    else:
        assert "cannot start dockerd" in lines[0]
    assert "build" not in Path(fake_docker["FAKE_CALLS"]).read_text()


# ---- smoke-check.py: verdicts -------------------------------------------------------------------------------------

def write_records(directory: Path, statuses: dict[tuple[str, str], str], batch: int = 1,
                  caffe: dict | None = None) -> None:
    store = ResultsStore(directory)
    for (network, backend), status in statuses.items():
        store.append(Record(config=Config(network=network, backend=backend, batch=batch), status=status,  # type: ignore[arg-type]
                            message=None if status == "ok" else "Caffe aborted: CHECK failed",
                            metadata=caffe if backend == "caffe" and caffe else {},
                            finished_at="2026-12-06T00:00:00+00:00"))


def all_ok() -> dict[tuple[str, str], str]:
    return {(n, b): "ok" for n in NETWORKS for b in BACKENDS}


def test_records_all_ok_is_a_pass(tmp_path: Path) -> None:
    write_records(tmp_path, all_ok())
    write_records(tmp_path, {("squeezenet_v1.1", "opencv"): "ok"}, batch=4)  # another batch: counted, not checked
    ok, line = smoke_check.check_records(tmp_path, NETWORKS, BACKENDS, 1)
    assert ok, line
    assert line.startswith("9 records, all 8 ok")


def test_records_failed_or_missing_fail_and_are_named(tmp_path: Path) -> None:
    statuses = all_ok()
    statuses[("mobilenet_v1", "caffe")] = "failed"
    del statuses[("squeezenet_v1.1", "opencv")]
    write_records(tmp_path, statuses)
    ok, line = smoke_check.check_records(tmp_path, NETWORKS, BACKENDS, 1)
    assert not ok
    assert line.startswith("7 records, 6 of 8 ok")
    assert "mobilenet_v1/caffe: failed (Caffe aborted: CHECK failed)" in line
    assert "squeezenet_v1.1/opencv: no record" in line


def test_records_the_newest_final_record_decides(tmp_path: Path) -> None:
    statuses = all_ok()
    statuses[("mobilenet_v1", "pytorch")] = "failed"
    write_records(tmp_path, statuses)
    store = ResultsStore(tmp_path)  # measured again, ok: the newer record wins, as in every reader of the store
    store.append(Record(config=Config(network="mobilenet_v1", backend="pytorch", batch=1), status="ok",
                        finished_at="2026-12-06T01:00:00+00:00"))
    assert smoke_check.check_records(tmp_path, NETWORKS, BACKENDS, 1)[0]


def test_records_a_damaged_line_fails_even_when_every_configuration_is_ok(tmp_path: Path) -> None:
    write_records(tmp_path, all_ok())
    shard = next(tmp_path.glob("*.jsonl"))
    shard.write_text(shard.read_text() + '{"config": {"network": "squeeze\n')
    ok, line = smoke_check.check_records(tmp_path, NETWORKS, BACKENDS, 1)
    assert not ok and line == "8 records, 8 of 8 ok; 1 unreadable lines"


@pytest.mark.parametrize(("caffe", "passes"), [
    ({"backend_gpu_build": True, "backend_engine": "CAFFE", "backend_device": "cpu"}, True),
    ({"backend_gpu_build": False, "backend_engine": "CAFFE"}, False),
    ({"backend_gpu_build": True, "backend_engine": "CUDNN"}, False),
    (None, False),
])
def test_records_of_the_gpu_image_say_caffe_is_the_gpu_build_in_cpu_mode(tmp_path: Path, caffe: dict | None,
                                                                         passes: bool) -> None:
    write_records(tmp_path, all_ok(), caffe=caffe)
    ok, line = smoke_check.check_records(tmp_path, NETWORKS, BACKENDS, 1, gpu_build=True)
    assert ok is passes, line
    assert ("the GPU build, in CPU mode (engine CAFFE)" in line) if passes else "not the GPU build in CPU mode" in line


def test_records_an_empty_directory_fails(tmp_path: Path) -> None:
    ok, line = smoke_check.check_records(tmp_path, NETWORKS, BACKENDS, 1)
    assert not ok and line.startswith("0 records, 0 of 8 ok")


def doctor_report(gpu_build: bool = False, libraries: list[str] | None = None, arch: str | None = None,
                  unavailable: str | None = None, load_error: str | None = None) -> dict:
    backends = [{"name": name, "available": name != unavailable, "reason": None if name != unavailable else
                 "pycaffe not importable"} for name in BACKENDS]
    caffe = {"gpu_build": gpu_build, "cudnn": gpu_build, "cuda_arch": arch, "cuda_version": "13.0" if gpu_build
             else None, "cudnn_version": "9.19.0" if gpu_build else None, "cuda_libraries": libraries or []}
    if load_error:
        caffe["load_error"] = load_error
    return {"backends": backends, "caffe_build": caffe, "gpu": {"gpus": []}}


WHEELS = "/opt/venv/lib/python3.11/site-packages/nvidia"


@pytest.mark.parametrize(("report", "gpu_arch", "passes", "says"), [
    (doctor_report(), None, True, "4 backends available"),
    (doctor_report(unavailable="caffe"), None, False, "caffe (pycaffe not importable)"),
    (doctor_report(load_error="libcudart.so.13: cannot open shared object file"), None, False, "does not load"),
    (doctor_report(gpu_build=True, arch="90"), None, False, "is a GPU build"),
    (doctor_report(gpu_build=True, arch="90", libraries=[f"{WHEELS}/cu13/lib/libcudart.so.13",
                                                         f"{WHEELS}/cudnn/lib/libcudnn.so.9"]),
     "90", True, "loads libcudart, libcudnn from the wheels"),
    (doctor_report(gpu_build=True, arch="75 80 86 89 90 100 120", libraries=[f"{WHEELS}/cu13/lib/libcudart.so.13"]),
     "90", False, "not 90"),
    (doctor_report(gpu_build=True, arch="90", libraries=["/usr/local/cuda/lib64/libcudart.so.13"]),
     "90", False, "outside the NVIDIA wheels: /usr/local/cuda/lib64/libcudart.so.13"),
    (doctor_report(gpu_build=True, arch="90"), "90", False, "loaded no CUDA library"),
    (doctor_report(), "90", False, "not the GPU + cuDNN build"),
])
def test_doctor_verdicts(report: dict, gpu_arch: str | None, passes: bool, says: str) -> None:
    ok, line = smoke_check.check_doctor(report, BACKENDS, gpu_arch)
    assert ok is passes and says in line, line


def libraries(root: Path, *paths: str) -> Path:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"\x7fELF")
    return root


SITE = "opt/venv/lib/python3.11/site-packages/nvidia"
ONE_COPY = [f"{SITE}/cu13/lib/{name}" for name in ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13",
                                                   "libcurand.so.10")]
ONE_COPY += [f"{SITE}/cudnn/lib/libcudnn.so.9", f"{SITE}/cudnn/lib/libcudnn_ops.so.9"]


def test_cuda_libraries_of_the_gpu_image_once_and_in_the_wheels(tmp_path: Path) -> None:
    root = libraries(tmp_path, *ONE_COPY, "opt/caffe/lib/libopenblas.so.0", "usr/lib/libcuda_stub_notes.txt")
    ok, line = smoke_check.check_cuda_libraries(root, gpu=True)
    assert ok and line.startswith("one copy of each of 6 CUDA libraries"), line


@pytest.mark.parametrize(("extra", "drop", "says"), [
    (["usr/local/cuda/lib64/libcublas.so.13"], None, "more than one copy: libcublas.so.13 (2)"),
    (["opt/caffe/lib/libcudnn_ops.so.9"], None, "outside the NVIDIA wheels"),
    ([], f"{SITE}/cu13/lib/libcurand.so.10", "missing: libcurand.so"),
])
def test_cuda_libraries_a_second_copy_a_stray_or_a_gap_fails(tmp_path: Path, extra: list[str], drop: str | None,
                                                             says: str) -> None:
    root = libraries(tmp_path, *[p for p in ONE_COPY if p != drop], *extra)
    ok, line = smoke_check.check_cuda_libraries(root, gpu=True)
    assert not ok and says in line, line


def test_cuda_libraries_none_in_the_cpu_image(tmp_path: Path) -> None:
    assert smoke_check.check_cuda_libraries(libraries(tmp_path, "opt/caffe/lib/libopenblas.so.0"), gpu=False) == (
        True, "no CUDA runtime, cuBLAS, cuRAND or cuDNN library in the image")
    ok, line = smoke_check.check_cuda_libraries(libraries(tmp_path, f"{SITE}/cu13/lib/libcudart.so.13"), gpu=False)
    assert not ok and "libcudart.so.13" in line


def test_report_needs_both_files_not_empty(tmp_path: Path) -> None:
    assert not smoke_check.check_report(tmp_path)[0]
    (tmp_path / "report.md").write_text("# report\n")
    (tmp_path / "report.html").write_text("")
    ok, line = smoke_check.check_report(tmp_path)
    assert not ok and "report.html" in line and "report.md" not in line.split("empty:")[1]
    (tmp_path / "report.html").write_text("<html></html>")
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "table2.csv").write_text("network\n")
    assert smoke_check.check_report(tmp_path) == (True, "report.md (9 bytes), report.html, 1 tables, 0 figures")


def test_the_command_line_prints_one_line_and_exits_by_the_verdict(tmp_path: Path) -> None:
    write_records(tmp_path, all_ok())
    base = [sys.executable, str(REPO / "docker" / "smoke-check.py")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    passed = subprocess.run([*base, "records", str(tmp_path), "--networks", ",".join(NETWORKS), "--backends",
                             ",".join(BACKENDS), "--batch", "1"], capture_output=True, text=True, env=env, check=False)
    assert passed.returncode == 0 and len(passed.stdout.splitlines()) == 1
    failed = subprocess.run([*base, "records", str(tmp_path), "--networks", "alexnet", "--backends", "caffe",
                             "--batch", "1"], capture_output=True, text=True, env=env, check=False)
    assert failed.returncode == 1 and failed.stdout.startswith("8 records, 0 of 1 ok")
    doctor = tmp_path / "doctor.json"
    doctor.write_text("not json")
    broken = subprocess.run([*base, "doctor", str(doctor), "--backends", "caffe"], capture_output=True, text=True,
                            env=env, check=False)
    assert broken.returncode == 1 and broken.stdout.startswith("cannot check: JSONDecodeError")
    assert subprocess.run([*base, "nothing"], capture_output=True, check=False).returncode == 2


# ---- extra-ca.sh: the optional CA secret --------------------------------------------------------------------------

SHOW_ENV = ('. "$1"; for v in APT_CONFIG PIP_CERT SSL_CERT_FILE REQUESTS_CA_BUNDLE CURL_CA_BUNDLE GIT_SSL_CAINFO; '
            'do eval "echo $v=\\${$v:-}"; done; [ -z "${APT_CONFIG:-}" ] || cat "$APT_CONFIG"; '
            '[ -z "${PIP_CERT:-}" ] || tail -n 1 "$PIP_CERT"')


def test_without_the_secret_nothing_changes(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HARNESS_CA_SECRET": str(tmp_path / "absent")}
    proc = subprocess.run(["sh", "-c", SHOW_ENV, "sh", str(REPO / "docker" / "extra-ca.sh")], capture_output=True,
                          text=True, env=env, check=True)
    assert all(line.endswith("=") for line in proc.stdout.splitlines()), proc.stdout


def test_the_secret_is_added_to_the_system_bundle_for_every_downloader_and_removed_after(tmp_path: Path) -> None:
    secret = tmp_path / "ca"
    secret.write_text("-----BEGIN CERTIFICATE-----\nPROXY-CA\n-----END CERTIFICATE-----\n")
    env = {"PATH": os.environ["PATH"], "HARNESS_CA_SECRET": str(secret), "TMPDIR": str(tmp_path)}
    proc = subprocess.run(["sh", "-c", SHOW_ENV, "sh", str(REPO / "docker" / "extra-ca.sh")], capture_output=True,
                          text=True, env=env, check=True)
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line and "::" not in line)
    bundle = values["PIP_CERT"]
    assert bundle.startswith(str(tmp_path)) and bundle.endswith("/ca.pem")
    assert {values[v] for v in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO")} == {bundle}
    assert f'Acquire::https::CAInfo "{bundle}";' in proc.stdout
    assert proc.stdout.rstrip().endswith("-----END CERTIFICATE-----")
    assert not Path(bundle).exists() and not Path(values["APT_CONFIG"]).exists()  # gone with the RUN's shell
    if Path("/etc/ssl/certs/ca-certificates.crt").is_file():  # extra, not instead: the system's come first
        assert Path("/etc/ssl/certs/ca-certificates.crt").stat().st_size > 0


# ---- pyproject-requirements.py ------------------------------------------------------------------------------------

def test_requirements_are_the_dependencies_plus_the_extras_and_harness_extras_expand() -> None:
    project = {"name": "harness", "dependencies": ["numpy>=1.23"],
               "optional-dependencies": {"pytorch": ["torch>=2.1"], "report": ["pandas>=2"],
                                         "all": ["harness[pytorch,report]"]}}
    assert pyproject_requirements.requirements(project, ["pytorch"]) == ["numpy>=1.23", "torch>=2.1"]
    assert pyproject_requirements.requirements(project, ["all"]) == ["numpy>=1.23", "torch>=2.1", "pandas>=2"]
    with pytest.raises(SystemExit, match="no extra 'onnx'"):
        pyproject_requirements.requirements(project, ["onnx"])


def test_requirements_of_this_pyproject_on_the_command_line() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "docker" / "pyproject-requirements.py"),
                           str(REPO / "pyproject.toml"), "pytorch,onnx-gpu"], capture_output=True, text=True,
                          check=True)
    lines = proc.stdout.splitlines()
    assert "torch>=2.1" in lines and "onnxruntime-gpu>=1.17" in lines and "rich>=13" in lines
    assert not any(line.startswith("onnxruntime>") for line in lines)


def test_local_base_usage() -> None:
    proc = subprocess.run(["bash", str(REPO / "docker" / "local-base.sh")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_the_check_reads_what_harness_doctor_writes() -> None:
    """The doctor verdict on this machine's real `harness doctor --json` (the fields it reads exist)."""
    proc = subprocess.run([sys.executable, "-m", "harness", "doctor", "--json"], capture_output=True, text=True,
                          timeout=600, check=True)
    report = json.loads(proc.stdout)
    available = [b["name"] for b in report["backends"] if b["available"]]
    ok, line = smoke_check.check_doctor(report, available, None)
    if (report.get("caffe_build") or {}).get("gpu_build"):
        assert not ok and "is a GPU build" in line
    else:
        assert ok, line
        assert line.startswith(f"{len(available)} backends available")
