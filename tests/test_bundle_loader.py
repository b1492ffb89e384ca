"""The relocatable Caffe bundle's loader (docker/bundle/_bundle.py) on its own, without a bundle: which CUDA
library it takes when the interpreter's NVIDIA wheels and the system both have one of that soname."""

from __future__ import annotations

import ctypes
import importlib.util
import sys
from pathlib import Path

import pytest

LOADER = Path(__file__).parents[1] / "docker" / "bundle" / "_bundle.py"


def load_loader(monkeypatch: pytest.MonkeyPatch, libraries: str, opened: list[str], system: set[str]):
    """The loader as caffe-bundle.sh fills it in (CUDA_LIBRARIES), with ctypes.CDLL recording what it opens:
    names in ``system`` open by soname (as a system CUDA in ld.so's cache would), wheel paths always."""
    source = LOADER.read_text().replace("@CUDA_LIBRARIES@", libraries)

    def cdll(name: str, mode: int = 0) -> object:
        if "/" not in name and name not in system:
            raise OSError(f"{name}: cannot open shared object file")
        opened.append(name)
        return object()

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    spec = importlib.util.spec_from_loader("bundle_loader_under_test", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(LOADER)
    exec(compile(source, str(LOADER), "exec"), module.__dict__)  # the file under test, as a module
    return module


def test_the_wheels_libraries_win_over_the_systems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site-packages"
    for sub, name in (("nvidia/cu13/lib", "libcudart.so.13"), ("nvidia/cudnn/lib", "libcudnn.so.9")):
        (site / sub).mkdir(parents=True, exist_ok=True)
        (site / sub / name).write_bytes(b"")
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    opened: list[str] = []
    # the system has a libcudnn.so.9 too (a CUDA 12 one, say) and a libcurand the wheels lack
    load_loader(monkeypatch, "libcudart.so.13 libcudnn.so.9 libcurand.so.10", opened,
                system={"libcudnn.so.9", "libcurand.so.10"})
    assert opened == [str(site / "nvidia/cu13/lib/libcudart.so.13"), str(site / "nvidia/cudnn/lib/libcudnn.so.9"),
                      "libcurand.so.10"]


def test_without_wheels_the_system_libraries_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not (Path(p or ".") / "nvidia").is_dir()])
    opened: list[str] = []
    module = load_loader(monkeypatch, "libcudart.so.13 libcublas.so.13", opened, system={"libcudart.so.13"})
    assert opened == ["libcudart.so.13"]  # libcublas is left to the loader, whose error names it
    assert module.load_cuda_libraries() == ["libcudart.so.13"]
