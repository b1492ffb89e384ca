"""What can be checked of the Docker images without a Docker engine: each image's Python requirements
resolve for its Python version and platform (``pip install --dry-run --report``, metadata only), the
modern image's CUDA stack is one CUDA major (base image, PyTorch, ONNX Runtime GPU, cuDNN), and the
version pins agree across the Dockerfiles, their constraint files, conda-env.yml and pyproject.toml.

The requirements are read from the Dockerfiles' ``pip install`` lines (``.[extras]`` from pyproject.toml,
``-c`` constraint files from docker/), so a change to any of them is what gets checked. Resolving needs
PyPI (CI has it); without a network those tests skip, saying so.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11's tomllib")
REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
UBUNTU = {"16.04": ("3.5", 23), "22.04": ("3.10", 35), "24.04": ("3.12", 39)}  # python3, glibc 2.N
CONDA_NAMES = {"torch": "pytorch", "opencv-python-headless": "opencv", "matplotlib": "matplotlib-base"}
NETWORK_ERRORS = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                  "No route to host")


class Image:
    """A Dockerfile as far as Python goes: its Python, glibc, CUDA, and the requirements it pip-installs."""

    def __init__(self, name: str) -> None:
        self.path = REPO / "docker" / name
        text = self.path.read_text()
        self.text = text
        self.args = dict(re.findall(r"^ARG (\w+)=\"?([^\"\n]*)\"?$", text, re.M))
        ubuntu = re.findall(r"^FROM \S*ubuntu-?:?(\d\d\.\d\d)", text, re.M)
        python, glibc = UBUNTU[ubuntu[-1]]
        # an interpreter compiled into the image (Dockerfile.paper) replaces the distribution's
        self.python = ".".join(self.args["PYTHON_VERSION"].split(".")[:2]) if "PYTHON_VERSION" in self.args else python
        self.glibc = glibc
        self.requirements: list[str] = []
        self.constraints: list[Path] = []
        for command in self.pip_installs():
            self._read(command)

    def pip_installs(self) -> list[list[str]]:
        joined = re.sub(r"\\\n", " ", self.text)
        commands = []
        for line in joined.splitlines():
            if not line.startswith("RUN "):
                continue
            for part in line.split("&&"):
                words = shlex.split(part.strip().removeprefix("RUN "))
                pip = next((i for i, w in enumerate(words) if Path(w).name in ("pip", "pip3")), None)
                if pip is not None and "install" in words[pip:]:
                    commands.append(words[words.index("install", pip) + 1:])
        return commands

    def _read(self, words: list[str]) -> None:
        if "--upgrade" in words and words[-1] == "pip":
            return
        it = iter(words)
        for word in it:
            if word in ("-c", "--constraint"):
                self.constraints.append(REPO / "docker" / Path(next(it)).name)
            elif word.startswith("."):
                extras = re.fullmatch(r"\.\[([\w,-]+)\]", word)
                assert extras, f"{self.path.name}: cannot read {word!r}"
                self.requirements += PYPROJECT["project"]["dependencies"]
                for extra in extras.group(1).split(","):
                    self.requirements += PYPROJECT["project"]["optional-dependencies"][extra]
            elif not word.startswith("-"):
                self.requirements.append(word)

    def platforms(self) -> list[str]:
        tags = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"]
        return tags + [f"manylinux_2_{n}_x86_64" for n in range(5, self.glibc + 1)]


MODERN, PAPER = Image("Dockerfile"), Image("Dockerfile.paper")


def pinned(path: Path) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def pyproject_requirements() -> dict[str, Requirement]:
    found = {}
    project = PYPROJECT["project"]
    for text in [*project["dependencies"], *(r for reqs in project["optional-dependencies"].values() for r in reqs)]:
        req = Requirement(text)
        if req.name != "harness":
            found[req.name] = req
    return found


# ---- pins agree (offline) -----------------------------------------------------------------------

def test_conda_env_states_the_same_requirements_as_pyproject() -> None:
    conda = {}
    for dep in yaml.safe_load((REPO / "conda-env.yml").read_text())["dependencies"]:
        if isinstance(dep, str):
            name, spec = re.fullmatch(r"([\w.-]+)(.*)", dep).groups()
            conda[name] = SpecifierSet(spec.replace("=", "==", 1) if re.fullmatch(r"=[\d.]+", spec) else spec)
    for name, req in pyproject_requirements().items():
        if name == "onnxruntime-gpu":
            continue  # the GPU alternative to onnxruntime: not in the CPU conda environment
        conda_name = CONDA_NAMES.get(name, name)
        assert conda_name in conda, f"conda-env.yml lacks {conda_name} ({req})"
        assert conda[conda_name] == req.specifier, f"{conda_name}: conda {conda[conda_name]} vs pyproject {req}"
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(str(conda["python"]).lstrip("=")
                                                                           + ".0")


@pytest.mark.parametrize("source", [MODERN.constraints[0], REPO / ".ci" / "constraints-cpu.txt",
                                    *[pytest.param(image, id=image.path.name) for image in (MODERN, PAPER)]],
                         ids=lambda s: getattr(s, "name", None))
def test_pins_fall_within_pyproject(source: Path | Image) -> None:
    reqs = pinned(source) if isinstance(source, Path) else [Requirement(r) for r in source.requirements]
    ours = pyproject_requirements()
    checked = 0
    for req in reqs:
        if req.name not in ours or not req.specifier:
            continue
        bounds = [spec.version for spec in req.specifier if spec.operator in ("==", ">=", "~=", "===")]
        assert any(ours[req.name].specifier.contains(v, prereleases=True) for v in bounds), \
            f"{req} does not meet pyproject.toml's {ours[req.name]}"
        checked += 1
    assert checked or isinstance(source, Image)


def test_images_python_meets_requires_python() -> None:
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    for image in (MODERN, PAPER):
        assert requires.contains(image.python + ".0"), f"{image.path.name}: Python {image.python}"


def test_stated_gpu_architectures_are_the_ones_built() -> None:
    """Each image's CUDA_ARCH is what its header and docs/docker.md say it supports."""
    docs = (REPO / "docs" / "docker.md").read_text()
    build_script = (REPO / "docker" / "build-caffe.sh").read_text()
    modern = MODERN.args["CUDA_ARCH"]
    assert modern == re.search(r"major >= 13\)\); then\s+echo \"([\d ]+)\"", build_script).group(1)
    assert f"sm_{modern}" in MODERN.text
    paper = PAPER.args["CUDA_ARCH"]
    assert paper == "60 61"  # CUDA 8.0's nvcc stops at sm_62; the paper's P100 is sm_60
    for arch in (modern, paper):
        assert f"sm_{arch}" in docs, f"docs/docker.md lacks sm_{arch}"


# ---- requirements resolve (PyPI) ----------------------------------------------------------------

def resolve(image: Image, tmp_path: Path) -> dict[str, dict]:
    report = tmp_path / f"{image.path.name}.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
           "--disable-pip-version-check", "--report", str(report), "--target", str(tmp_path / "none"),
           "--python-version", image.python, "--only-binary=:all:"]
    for tag in image.platforms():
        cmd += ["--platform", tag]
    for constraint in image.constraints:
        cmd += ["-c", str(constraint)]
    proc = subprocess.run([*cmd, *image.requirements], capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0 and any(e in proc.stderr for e in NETWORK_ERRORS):
        pytest.skip(f"PyPI is not reachable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, f"{image.path.name}: pip cannot resolve {image.requirements}:\n{proc.stderr[-2000:]}"
    installs = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"].lower(): item["metadata"] for item in installs}


def cuda_majors(metadata: dict, extra: str | None = None) -> set[str]:
    """CUDA majors a package's requirements name: cuda-toolkit==13.x, nvidia-*-cu13, nvidia-cuda-runtime~=13."""
    majors = set()
    for text in metadata.get("requires_dist", []):
        req = Requirement(text)
        if req.marker and extra is None and "extra" in str(req.marker):
            continue
        if extra is not None and f'extra == "{extra}"' not in str(req.marker):
            continue
        if m := re.fullmatch(r"nvidia-[\w-]+-cu(\d+)", req.name):
            majors.add(m.group(1))
        elif req.name in ("cuda-toolkit", "nvidia-cuda-runtime"):
            majors |= {spec.version.split(".")[0] for spec in req.specifier}
    return majors


def cudnn_majors(metadata: dict, extra: str | None = None) -> set[str]:
    return {spec.version.split(".")[0] for text in metadata.get("requires_dist", [])
            for req in [Requirement(text)] if req.name.startswith("nvidia-cudnn")
            and (extra is None or f'extra == "{extra}"' in str(req.marker)) for spec in req.specifier}


@pytest.mark.slow
def test_modern_image_resolves_to_one_cuda_major(tmp_path: Path) -> None:
    resolved = resolve(MODERN, tmp_path)
    base = MODERN.args["CUDA_TAG"]
    cuda = base.split(".")[0]
    assert "cudnn" in base  # the base image's cuDNN, which Caffe links: cuDNN 9 in NVIDIA's CUDA 13 images
    assert cuda_majors(resolved["torch"]) == {cuda}, resolved["torch"]["version"]
    assert cuda_majors(resolved["onnxruntime-gpu"], extra="cuda") == {cuda}
    assert cudnn_majors(resolved["torch"]) == cudnn_majors(resolved["onnxruntime-gpu"], extra="cudnn") == {"9"}
    assert "onnxruntime" not in resolved  # the CPU build would shadow onnxruntime-gpu
    assert resolved["numpy"]["version"].startswith("2.")


@pytest.mark.slow
def test_paper_image_resolves_for_its_python_and_glibc(tmp_path: Path) -> None:
    resolved = resolve(PAPER, tmp_path)
    assert PAPER.python == "3.10" and PAPER.glibc == 23
    assert resolved["numpy"]["version"].startswith("2.")
    assert resolved["protobuf"]["version"] == "3.20.3"
    assert {"six", "opencv-python-headless", "nvidia-ml-py", "pandas"} <= set(resolved)
    assert "torch" not in resolved and "onnxruntime-gpu" not in resolved  # CUDA 8 has neither
