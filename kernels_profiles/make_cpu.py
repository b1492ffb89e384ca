"""Regenerate kernels_profiles/cpu/: ``harness kernels blas`` for each zoo network at batch 1, as an
``engine: CAFFE`` build and as a cuDNN build of Caffe runs it.

Run from the repository root, on a quiet machine (the files hold real BLAS timings):

    python kernels_profiles/make_cpu.py [NET ...]

Each file is the CLI's JSON output plus the machine it ran on and the command, written with one BLAS
call per line so that the files stay short and diff well.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "cpu"


def cli_args(network: str, cudnn: bool) -> list[str]:
    return ["kernels", "blas", network, "--batch", "1", *(["--cudnn"] if cudnn else []), "--repeats", "3",
            "--format", "json"]


def file_name(network: str, cudnn: bool) -> str:
    return f"{network}-b1-{'cudnn' if cudnn else 'caffe-engine'}.json"


def machine() -> dict:
    import numpy as np

    from harness.results.metadata import host_metadata

    info = {k: v for k, v in host_metadata().items() if k != "host"}
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    info["blas"] = f"numpy's {blas['name']} {blas.get('version', '')}".strip()
    return info


def dumps(data: dict) -> str:
    """JSON with one top-level key per line and one call per line."""
    parts = []
    for key, value in data.items():
        if key == "calls":
            calls = ",\n".join("  " + json.dumps(call) for call in value)
            parts.append(f'"calls": [\n{calls}\n ]')
        else:
            parts.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{\n " + ",\n ".join(parts) + "\n}\n"


def main(networks: list[str]) -> int:
    from harness import zoo

    host = machine()
    for network in networks or zoo.zoo_names():
        for cudnn in (False, True):
            args = cli_args(network, cudnn)
            proc = subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                sys.stderr.write(f"{network}: harness {' '.join(args)} failed: {proc.stderr.strip()}\n")
                return 1
            data = json.loads(proc.stdout)
            data["machine"] = host
            data["command"] = "harness " + " ".join(args)
            (OUT / file_name(network, cudnn)).write_text(dumps(data))
            print(f"{file_name(network, cudnn)}: {len(data['calls'])} calls", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
