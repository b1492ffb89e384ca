"""BVLC Caffe as an oracle: what ``caffe.Net(prototxt, caffe.TEST)`` does with each of many files.

Run by the interpreter that has pycaffe (never imported by the harness): it reads one prototxt path per
line on stdin (or a prototxt path, a tab and a .caffemodel path: ``caffe.Net(prototxt, caffe.TEST,
weights=model)``, Caffe's CopyTrainedLayersFrom) and writes one JSON object per line on stdout, in order:

- ``{"ok": true, "blobs": {name: shape}, "params": {layer: [shape, ...]}}`` when Caffe builds the net;
- ``{"ok": false, "reason": "..."}`` when it refuses it: the FATAL/Check line of its log (a CHECK failure
  aborts the process), or protobuf's parse error;
- ``{"ok": null, "reason": "..."}`` when the oracle could not say (Caffe ran out of the memory or time
  the oracle allows it, or died otherwise): such a case says nothing about the harness.

Each net is built in a child forked from this warm process (pycaffe imported once), so an abort costs a
fork, not an interpreter start. The child's memory is capped (``--memory-mib``) so that a mutated file
asking for huge blobs cannot take the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import select
import signal
import sys
import tempfile
import time


def _build(path: str) -> dict:
    import caffe

    prototxt, _, weights = path.partition("\t")
    net = caffe.Net(prototxt, caffe.TEST, weights=weights) if weights else caffe.Net(prototxt, caffe.TEST)
    try:
        # Blob.shape, not Blob.data.shape: the data of an empty blob does not exist (Check failed: data_)
        blobs = {name: list(blob.shape) for name, blob in net.blobs.items()}
        params = {name: [list(b.shape) for b in blobs_] for name, blobs_ in net.params.items()}
    except UnicodeDecodeError:  # Caffe built it; pycaffe cannot give back names that are not UTF-8
        return {"ok": True, "blobs": None, "params": None}
    return {"ok": True, "blobs": blobs, "params": params}


_FATAL = re.compile(r"^F(?:\d{4})?\d{4} .*$", re.MULTILINE)  # a glog FATAL line (glog >= 0.6 prints the year)
_PARSE_ERROR = re.compile(r"Error parsing text-format [^\n]*")


def _reason(log: str) -> str:
    """Protobuf's parse error where there is one, else Caffe's FATAL line."""
    found = _PARSE_ERROR.search(log) or _FATAL.search(log)
    if found:
        return found.group().strip()[:500]
    lines = [line for line in log.splitlines() if line.strip()]
    return (lines[-1].strip() if lines else "no message")[:500]


def judge(path: str, memory_mib: int, seconds: float) -> dict:
    with tempfile.TemporaryFile() as log:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: build, report, exit without running the parent's cleanups
            os.close(read_end)
            os.dup2(log.fileno(), 2)
            limit = memory_mib << 20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            try:
                result = _build(path)
            except MemoryError:
                result = {"ok": None, "reason": "oracle: out of memory"}
            except Exception as exc:  # pycaffe's own refusals (e.g. a file it cannot open)
                result = {"ok": False, "reason": f"{type(exc).__name__}: {exc}"[:500]}
            os.write(write_end, json.dumps(result).encode())
            os._exit(0)
        os.close(write_end)
        chunks, deadline = [], time.monotonic() + seconds
        while True:
            ready, _, _ = select.select([read_end], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(read_end, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        log.seek(0)
        text = log.read().decode("utf-8", errors="replace")
    if chunks:
        return json.loads(b"".join(chunks))
    if time.monotonic() >= deadline:
        return {"ok": None, "reason": f"oracle: no result after {seconds} s"}
    reason = _reason(text)
    if "allocation of size" in reason or "bad_alloc" in text or "std::length_error" in text:
        return {"ok": None, "reason": f"oracle: out of memory ({reason})"}
    if _FATAL.search(text) or _PARSE_ERROR.search(text):
        return {"ok": False, "reason": reason}
    return {"ok": None, "reason": f"oracle: the child died (status {status}): {reason}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory-mib", type=int, default=3072)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    os.environ.setdefault("GLOG_minloglevel", "2")
    import caffe

    caffe.set_mode_cpu()
    for line in sys.stdin:
        path = line.rstrip("\n")
        if path:
            sys.stdout.write(json.dumps(judge(path, args.memory_mib, args.seconds)) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
