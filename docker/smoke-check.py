"""smoke-check.py: the verdicts of docker/smoke-test.sh on what the container wrote, run inside the image (its
Python and its harness), so that the host needs nothing but Docker. One line out; exit 0 when the step did what
it says, 1 when not, 2 on bad arguments.

  smoke-check.py records RESULTS_DIR --networks A,B --backends X,Y,... --batch 1 [--gpu-build]
      every network x backend at that batch has a record, the last one (the store's merge rule) `ok`; with
      --gpu-build the Caffe records say they ran the GPU build of Caffe, in CPU mode with engine CAFFE
  smoke-check.py cuda-libraries ROOT [--gpu]
      the CUDA libraries under ROOT (the image's /): none (CPU image), or with --gpu one copy of each, all in the
      NVIDIA wheels of a Python environment, and among them every one Caffe links
  smoke-check.py doctor DOCTOR_JSON [--gpu-arch SM]
      `harness doctor --json` lists every backend available and Caffe loaded without error; with --gpu-arch the
      Caffe is the GPU build for exactly that SM, with cuDNN, and the CUDA libraries it loaded are the NVIDIA
      wheels' of the image's Python environment (no second copy)
  smoke-check.py report REPORT_DIR
      the report was written: report.md and report.html, not empty
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

WHEEL_LIBRARIES = "/site-packages/nvidia/"


def check_records(results: Path, networks: list[str], backends: list[str], batch: int,
                  gpu_build: bool = False) -> tuple[bool, str]:
    from harness.results.store import read_results

    merged = read_results([results])
    latest = {(r.config.network, r.config.backend): r for r in merged.records if r.config.batch == batch}
    written = len(merged.records)
    problems = [f"{len(merged.unreadable)} unreadable lines"] if merged.unreadable else []
    for network in networks:
        for backend in backends:
            record = latest.get((network, backend))
            if record is None:
                problems.append(f"{network}/{backend}: no record")
            elif record.status != "ok":
                problems.append(f"{network}/{backend}: {record.status} ({record.message or 'no message'})")
            elif backend == "caffe" and gpu_build and not (record.metadata.get("backend_gpu_build") and
                                                           record.metadata.get("backend_engine") == "CAFFE"):
                problems.append(f"{network}/caffe: not the GPU build in CPU mode (gpu_build "
                                f"{record.metadata.get('backend_gpu_build')}, engine "
                                f"{record.metadata.get('backend_engine')})")
    expected = len(networks) * len(backends)
    ok = sum(1 for n in networks for b in backends if (n, b) in latest and latest[(n, b)].status == "ok")
    if problems:
        return False, f"{written} records, {ok} of {expected} ok; " + "; ".join(problems)
    caffe = "; Caffe: the GPU build, in CPU mode (engine CAFFE)" if gpu_build else ""
    return True, (f"{written} records, all {expected} ok ({len(networks)} networks x {', '.join(backends)} "
                  f"at B={batch}){caffe}")


CUDA_LIBRARY = re.compile(r"^lib(cudart|cublas|cublasLt|curand|cudnn)(_\w+)?\.so")
CAFFE_LINKS = ("libcudart.so", "libcublas.so", "libcublasLt.so", "libcurand.so", "libcudnn.so")


def check_cuda_libraries(root: Path, gpu: bool) -> tuple[bool, str]:
    found: dict[str, list[str]] = {}
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not os.path.ismount(os.path.join(directory, d))]
        for name in files:
            if CUDA_LIBRARY.match(name):
                found.setdefault(name, []).append(os.path.join(directory, name))
    paths = sorted(p for ps in found.values() for p in ps)
    if not gpu:
        return (not paths, "no CUDA runtime, cuBLAS, cuRAND or cuDNN library in the image" if not paths
                else "CUDA libraries in the CPU image: "
                + ", ".join(paths[:5]))
    twice = {name: ps for name, ps in found.items() if len(ps) > 1}
    elsewhere = [p for p in paths if WHEEL_LIBRARIES not in p]
    missing = [n for n in CAFFE_LINKS if not any(name.startswith(n) for name in found)]
    if twice or elsewhere or missing:
        return False, "; ".join(filter(None, [
            twice and "more than one copy: " + ", ".join(f"{n} ({len(ps)})" for n, ps in sorted(twice.items())),
            elsewhere and "outside the NVIDIA wheels: " + ", ".join(elsewhere[:5]),
            missing and "missing: " + ", ".join(missing)]))
    return True, (f"one copy of each of {len(paths)} CUDA libraries (cudart, cuBLAS, cuRAND, cuDNN), all in the "
                  f"NVIDIA wheels ({', '.join(sorted({str(Path(p).parent) for p in paths}))})")


def check_doctor(report: dict, backends: list[str], gpu_arch: str | None) -> tuple[bool, str]:
    available = {b["name"]: b for b in report["backends"] if b["available"]}
    missing = [f"{b['name']} ({b['reason']})" for b in report["backends"] if b["name"] in backends
               and b["name"] not in available]
    missing += [name for name in backends if name not in {b["name"] for b in report["backends"]}]
    if missing:
        return False, "backends not available: " + ", ".join(missing)
    caffe = report.get("caffe_build") or {}
    if "load_error" in caffe:
        return False, f"Caffe does not load: {caffe['load_error']}"
    if gpu_arch is None:
        if caffe.get("gpu_build"):
            return False, "Caffe is a GPU build; the CPU image should have the CPU-only one"
        return True, f"{len(available)} backends available ({', '.join(sorted(available))}); Caffe CPU-only, loads"
    libraries = caffe.get("cuda_libraries") or []
    if not caffe.get("gpu_build") or not caffe.get("cudnn"):
        return False, "Caffe is not the GPU + cuDNN build"
    if (caffe.get("cuda_arch") or "").split() != [gpu_arch]:
        return False, f"Caffe is built for sm {caffe.get('cuda_arch')}, not {gpu_arch}"
    if not libraries:
        return False, "Caffe loaded no CUDA library"
    elsewhere = [path for path in libraries if WHEEL_LIBRARIES not in path]
    if elsewhere:
        return False, "Caffe loaded CUDA libraries from outside the NVIDIA wheels: " + ", ".join(elsewhere)
    names = sorted({Path(p).name.split(".so")[0] for p in libraries})
    return True, (f"{len(available)} backends available; Caffe GPU build (CUDA {caffe.get('cuda_version')}, "
                  f"sm {gpu_arch}, cuDNN {caffe.get('cudnn_version')}) loads {', '.join(names)} from the wheels "
                  f"({', '.join(sorted({str(Path(p).parent) for p in libraries}))})")


def check_report(directory: Path) -> tuple[bool, str]:
    files = [directory / "report.md", directory / "report.html"]
    absent = [f.name for f in files if not f.is_file() or f.stat().st_size == 0]
    if absent:
        return False, f"{directory}: missing or empty: {', '.join(absent)}"
    tables = len(list(directory.glob("tables/*.csv")))
    figures = len(list(directory.glob("figures/*.png")))
    return True, f"report.md ({files[0].stat().st_size} bytes), report.html, {tables} tables, {figures} figures"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="smoke-check.py")
    sub = parser.add_subparsers(dest="check", required=True)
    records = sub.add_parser("records")
    records.add_argument("results", type=Path)
    records.add_argument("--networks", required=True)
    records.add_argument("--backends", required=True)
    records.add_argument("--batch", type=int, required=True)
    records.add_argument("--gpu-build", action="store_true")
    libraries = sub.add_parser("cuda-libraries")
    libraries.add_argument("root", type=Path)
    libraries.add_argument("--gpu", action="store_true")
    doctor = sub.add_parser("doctor")
    doctor.add_argument("doctor_json", type=Path)
    doctor.add_argument("--backends", required=True)
    doctor.add_argument("--gpu-arch")
    report = sub.add_parser("report")
    report.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.check == "records":
            ok, line = check_records(args.results, args.networks.split(","), args.backends.split(","), args.batch,
                                     args.gpu_build)
        elif args.check == "cuda-libraries":
            ok, line = check_cuda_libraries(args.root, args.gpu)
        elif args.check == "doctor":
            ok, line = check_doctor(json.loads(args.doctor_json.read_text()), args.backends.split(","),
                                    args.gpu_arch)
        else:
            ok, line = check_report(args.directory)
    except (OSError, ValueError, KeyError) as exc:
        ok, line = False, f"cannot check: {type(exc).__name__}: {exc}"
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
