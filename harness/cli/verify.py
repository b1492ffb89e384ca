"""``harness verify``: the same network, weights and input through several backends, compared.

Exit status 0 only when every requested backend ran and all pairs agree within the tolerance on the
output, the pre-softmax blob and the sampled intermediate blobs; 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

from harness import jsonout
from harness.backends.base import get_backend, runs_on
from harness.cli.argtypes import backend_list, device_name, positive_float, positive_int
from harness.convert.verify import DEFAULT_TOLERANCE, Verification, verify
from harness.errors import BackendUnavailable

DEFAULT_BACKENDS = ("pytorch", "onnxruntime", "opencv", "caffe")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("networks", nargs="+", metavar="NET_OR_PATH", help="zoo network names or prototxt paths")
    p.add_argument("--backends", type=backend_list, default=None, metavar="LIST",
                   help=f"comma-separated backends (default: those of {','.join(DEFAULT_BACKENDS)} "
                        "available on the device)")
    p.add_argument("--device", type=device_name, default="cpu", metavar="DEV",
                   help="cpu or cuda:N: where every backend runs (default cpu)")
    p.add_argument("--batch", type=positive_int, default=1, help="batch size (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the input (default 0)")
    p.add_argument("--tol", type=positive_float, default=DEFAULT_TOLERANCE,
                   help=f"largest allowed error relative to the blob's scale (default {DEFAULT_TOLERANCE:g})")
    p.add_argument("--format", choices=("table", "json"), default="table")


def _backends(names: list[str] | None, device: str) -> list[str]:
    if names is not None:
        return names
    available = []
    for name in DEFAULT_BACKENDS:
        try:
            info = get_backend(name).probe()
        except BackendUnavailable as exc:
            print(f"note: {name} skipped: {exc}", file=sys.stderr)
            continue
        if not info.available:
            print(f"note: {name} skipped: {info.reason}", file=sys.stderr)
        elif not runs_on(info, device):
            print(f"note: {name} skipped: it does not run on {device} here", file=sys.stderr)
        else:
            available.append(name)
    return available


def run(args: argparse.Namespace) -> int:
    from harness import zoo

    backends = _backends(args.backends, args.device)
    results: list[Verification] = []
    for name in args.networks:
        # Every engine runs the network Caffe builds for inference: Caffe and OpenCV read the file itself in
        # TEST, so the converted engines must read the same layers (no --phase here, unlike analyze).
        graph = zoo.resolve(name, "TEST")
        result = verify(graph, name, backends, args.batch, args.seed, args.tol, device=args.device)
        results.append(result)
        if args.format == "table":
            print(format_verification(result))
    if args.format == "json":
        jsonout.dump([to_json(r) for r in results], sys.stdout)
    return 0 if all(r.ok for r in results) else 1


def format_verification(v: Verification) -> str:
    lines = [f"{v.network}  batch {v.batch}  seed {v.seed}  device {v.device}  tolerance {v.tolerance:g}"]
    for r in v.runs:
        detail = (r.info.get("mode") or "") if r.status == "ok" else r.message
        version = next((f"{k} {r.info[k]}" for k in ("torch", "onnxruntime", "opencv", "caffe") if k in r.info), "")
        lines.append(f"  {r.backend:<12} {r.status:<11} {r.seconds:6.1f}s  {detail} {version}".rstrip())
    forks = next((r.info["fork_features"] for r in v.runs if r.info.get("fork_features")), [])
    if forks:
        lines.append(f"  run as the Caffe fork builds it: {'; '.join(forks)}")
    if v.errors:
        lines.append(f"  {'pair':<26} {'blob':<34} {'role':<12} {'max_abs':>9} {'rel':>9}  agree")
    for e in v.errors:
        lines.append(f"  {e.a + ' vs ' + e.b:<26} {e.blob:<34} {e.role:<12} {e.max_abs:9.2e} {e.rel:9.2e}  "
                     f"{'yes' if e.ok else 'NO'}" + (f"  ({e.note})" if e.note else ""))
    if v.compared < 2:
        lines.append("  fewer than two backends ran: nothing verified")
    lines.append(f"  => {'AGREE' if v.ok else 'DO NOT AGREE'}")
    return "\n".join(lines)


def to_json(v: Verification) -> dict:
    return {"network": v.network, "batch": v.batch, "seed": v.seed, "device": v.device, "tolerance": v.tolerance,
            "ok": v.ok,
            "runs": [{"backend": r.backend, "status": r.status, "message": r.message,
                      "seconds": round(r.seconds, 3), "info": r.info} for r in v.runs],
            "errors": [e.__dict__ for e in v.errors]}
