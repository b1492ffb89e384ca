"""What can be checked of the Docker images without a Docker engine: each image's Python requirements resolve for
its Python version and platform (``pip install --dry-run --report``, metadata only), the modern GPU image's CUDA
stack is one CUDA major and Caffe is compiled against exactly the CUDA and cuDNN wheels that the runtime's torch
installs, the version pins agree across the Dockerfiles, their constraint files, conda-env.yml and pyproject.toml,
and every step that downloads trusts the optional CA secret.

The requirements are read from the Dockerfiles' ``pip install`` steps, per stage (``.[extras]`` and
``docker/pyproject-requirements.py PYPROJECT EXTRAS`` from pyproject.toml, ``-c`` constraint files), so a change to
any of them is what gets checked. Resolving needs PyPI (CI has it); without a network those tests skip, saying so.
The images themselves are built and used by docker/smoke-test.sh (CI's Docker phase).
"""

from __future__ import annotations

import importlib.util
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
#: base image -> (python3, glibc 2.N)
DISTRIBUTIONS = {"ubuntu:16.04": ("3.5", 23), "debian:bookworm": ("3.11", 36)}
CONDA_NAMES = {"torch": "pytorch", "opencv-python-headless": "opencv", "matplotlib": "matplotlib-base"}
NETWORK_ERRORS = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
                  "No route to host")
_spec = importlib.util.spec_from_file_location("pyproject_requirements", REPO / "docker" / "pyproject-requirements.py")
assert _spec and _spec.loader
requirements_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(requirements_script)


def run_steps(text: str) -> list[str]:
    """The RUN instructions of a Dockerfile (or of one stage), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    return [line for line in joined.splitlines() if line.startswith("RUN ")]


def stages(text: str) -> dict[str, str]:
    """Stage name -> its text (an unnamed stage is "final")."""
    parts = re.split(r"^(?=FROM )", text, flags=re.M)
    found = {}
    for part in parts[1:]:
        named = re.match(r"FROM \S+ AS (\S+)", part)
        found[named.group(1) if named else "final"] = part
    return found


class Image:
    """One variant of a Dockerfile as far as Python goes: its Python, glibc, and what it pip-installs into the
    harness's environment (the stages named, or the whole file)."""

    def __init__(self, name: str, label: str, stage_names: tuple[str, ...] = ()) -> None:
        self.path = REPO / "docker" / name
        self.label = label
        text = self.path.read_text()
        self.text = text
        self.args = dict(re.findall(r"^ARG (\w+)=\"?([^\"\n]*)\"?$", text, re.M))
        base = self.args.get("BASE") or re.findall(r"^FROM (\S+)", text, re.M)[0]
        distribution = next(d for d in DISTRIBUTIONS if base.startswith(d))
        python, glibc = DISTRIBUTIONS[distribution]
        # an interpreter compiled into the image (Dockerfile.paper) replaces the distribution's
        self.python = ".".join(self.args["PYTHON_VERSION"].split(".")[:2]) if "PYTHON_VERSION" in self.args else python
        self.glibc = glibc
        self.requirements: list[str] = []
        self.constraints: list[Path] = []
        self.lists: dict[str, list[str]] = {}  # requirement files the build writes with pyproject-requirements.py
        body = "\n".join(stages(text)[s] for s in stage_names) if stage_names else text
        for command in self.pip_installs(body):
            self._read(command)

    def __repr__(self) -> str:
        return self.label

    @staticmethod
    def pip_installs(text: str) -> list[list[str]]:
        """The arguments of every `pip install`, and `.[EXTRAS]` for every pyproject-requirements.py EXTRAS (with
        `> FILE` when its list is written to a file that a later `pip install -r FILE` reads)."""
        commands = []
        for line in run_steps(text):
            lexer = shlex.shlex(line.removeprefix("RUN "), posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            words: list[str] = []
            for token in [*lexer, ";"]:
                if token.strip("&;|()"):
                    words.append(token)
                    continue
                script = next((i for i, w in enumerate(words) if Path(w).name == "pyproject-requirements.py"), None)
                pip = next((i for i, w in enumerate(words) if Path(w).name in ("pip", "pip3")), None)
                if script is not None:
                    commands.append([f".[{words[script + 2]}]", *words[script + 3:]])
                elif pip is not None and "install" in words[pip:]:
                    commands.append(words[words.index("install", pip) + 1:])
                words = []
        return commands

    def _read(self, words: list[str]) -> None:
        if "--upgrade" in words and words[-1] == "pip":
            return
        if len(words) == 3 and words[1] == ">":  # pyproject-requirements.py EXTRAS > FILE
            self.lists[Path(words[2]).name] = self._extras(words[0])
            return
        it = iter(words)
        for word in it:
            if word in ("-c", "--constraint"):
                name = Path(next(it)).name
                self.constraints.append(next(p for p in (REPO / "docker" / name, REPO / ".ci" / name) if p.exists()))
            elif word in ("-r", "--requirement"):
                name = Path(next(it)).name
                assert name in self.lists, f"{self.path.name}: pip reads {name}, which no step here writes"
                self.requirements += self.lists[name]
            elif word in ("--index-url", "--find-links"):
                next(it)
            elif word == ".":  # the harness: its dependencies, unless they were installed by an earlier step
                if "--no-deps" not in words:
                    self.requirements += requirements_script.requirements(PYPROJECT["project"], [])
            elif word.startswith("."):
                self.requirements += self._extras(word)
            elif not word.startswith("-") and not word.startswith("/"):
                self.requirements.append(word)

    def _extras(self, word: str) -> list[str]:
        """`.[EXTRAS]`: the harness's dependencies and those of EXTRAS, as pyproject-requirements.py lists them."""
        extras = re.fullmatch(r"\.\[([\w,-]+)\]", word)
        assert extras, f"{self.path.name}: cannot read {word!r}"
        return requirements_script.requirements(PYPROJECT["project"], extras.group(1).split(","))

    def platforms(self) -> list[str]:
        tags = ["manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"]
        return tags + [f"manylinux_2_{n}_x86_64" for n in range(5, self.glibc + 1)]


GPU = Image("Dockerfile", "harness (GPU)", ("requirements", "python-cpu-only-0"))
CPU = Image("Dockerfile", "harness (CPU_ONLY=1)", ("requirements", "python-cpu-only-1"))
PAPER = Image("Dockerfile.paper", "harness-paper")
IMAGES = (GPU, CPU, PAPER)


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


@pytest.mark.parametrize("source", [REPO / "docker" / "constraints-cuda13.txt", REPO / ".ci" / "constraints-cpu.txt",
                                    *IMAGES], ids=lambda s: getattr(s, "name", None) or repr(s))
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
    for image in IMAGES:
        assert requires.contains(image.python + ".0"), f"{image}: Python {image.python}"
    assert GPU.python == CPU.python == "3.11"  # Debian 12's, the Python every test of this project runs on


def test_each_variant_installs_its_own_builds() -> None:
    """The GPU image: torch and onnxruntime-gpu under the CUDA 13 pins; the CPU image: PyTorch's CPU torch pinned as
    CI pins it (.ci/constraints-cpu.txt) and the CPU onnxruntime (the `onnx` extra); both the report's extras."""
    assert [c.name for c in GPU.constraints] == ["constraints-cuda13.txt"]
    assert {c.name for c in CPU.constraints} == {"constraints-cpu.txt"}
    assert "onnxruntime-gpu>=1.17" in GPU.requirements and "onnxruntime>=1.17" not in GPU.requirements
    assert "onnxruntime>=1.17" in CPU.requirements and "onnxruntime-gpu>=1.17" not in CPU.requirements
    for image in (GPU, CPU):
        assert {"torch>=2.1", "opencv-python-headless<5,>=4.8", "nvidia-ml-py>=12", "pandas>=2", "h5py>=3"} <= {
            str(Requirement(r)) for r in image.requirements}, image
    cpu_stage = stages(CPU.text)["python-cpu-only-1"]
    assert 'ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu' in cpu_stage
    assert "torch.version.cuda is None" in cpu_stage and "torch.version.cuda.startswith('13.')" in GPU.text
    # the local wheels reach the build as a bind mount, never COPYed into a layer
    assert "source=docker/wheels" in cpu_stage and not re.search(r"^COPY .*docker/wheels", CPU.text, re.M)


def test_every_downloading_step_trusts_the_optional_ca_secret() -> None:
    """Every RUN that runs apt, pip, curl or a script that downloads mounts the secret `ca` and sources
    docker/extra-ca.sh first; no `# syntax=` line (it would need Docker Hub); the secret is never COPYed."""
    downloads = re.compile(r"apt-get|pip |pip3 |curl |build-caffe\.sh|cuda-toolkit-from-wheels|caffe-bundle\.sh|"
                           r"urlretrieve|apt-source")
    for name in ("Dockerfile", "Dockerfile.paper"):
        text = (REPO / "docker" / name).read_text()
        assert not re.search(r"^# *syntax *=", text, re.M | re.I), name
        checked = 0
        for step in run_steps(text):
            mounts = re.match(r"RUN ((?:--mount=\S+\s+)*)", step).group(1).split()
            command = step[len(re.match(r"RUN (?:--mount=\S+\s+)*", step).group(0)):]
            if downloads.search(command):
                assert "--mount=type=secret,id=ca" in mounts, f"{name}: {command[:120]}"
                assert command.startswith(". /usr/local/lib/harness-docker/extra-ca.sh "), f"{name}: {command[:120]}"
                checked += 1
        assert checked >= 4, name
        assert "COPY docker/extra-ca.sh /usr/local/lib/harness-docker/" in text
        assert "secrets" not in re.sub(r"#.*", "", text), name


def test_stated_gpu_architectures_are_the_ones_built() -> None:
    """Each image's CUDA_ARCH is what its header and docs/docker.md say it supports."""
    docs = (REPO / "docs" / "docker.md").read_text()
    build_script = (REPO / "docker" / "build-caffe.sh").read_text()
    modern = GPU.args["CUDA_ARCH"]
    assert modern == re.search(r"major >= 13\)\); then\s+echo \"([\d ]+)\"", build_script).group(1)
    assert f"sm_{modern}" in GPU.text
    paper = PAPER.args["CUDA_ARCH"]
    assert paper == "60 61"  # CUDA 8.0's nvcc stops at sm_62; the paper's P100 is sm_60
    for arch in (modern, paper):
        assert f"sm_{arch}" in docs, f"docs/docker.md lacks sm_{arch}"


# ---- requirements resolve (PyPI) ----------------------------------------------------------------

def resolve(image: Image, tmp_path: Path) -> dict[str, dict]:
    report = tmp_path / "resolved.json"
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
    assert proc.returncode == 0, f"{image}: pip cannot resolve {image.requirements}:\n{proc.stderr[-2000:]}"
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


def toolkit_default(name: str) -> str:
    """A version docker/cuda-toolkit-from-wheels.sh builds Caffe against by default (the Dockerfile passes none)."""
    script = (REPO / "docker" / "cuda-toolkit-from-wheels.sh").read_text()
    return re.search(rf"^{name}=\${{{name}:-([\d.]+)}}$", script, re.M).group(1)


@pytest.mark.slow
def test_gpu_image_resolves_to_one_cuda_major_and_the_libraries_caffe_was_built_against(tmp_path: Path) -> None:
    """torch's CUDA wheels are the only CUDA libraries of the GPU image: they must be exactly the toolkit and cuDNN
    that the build stage compiles Caffe against (cuda-toolkit-from-wheels.sh), with every library Caffe links."""
    assert "cuda-toolkit-from-wheels.sh /opt/cuda" in GPU.text and "CUDA_TOOLKIT_VERSION" not in GPU.text
    resolved = resolve(GPU, tmp_path)
    toolkit, cudnn = toolkit_default("CUDA_TOOLKIT_VERSION"), toolkit_default("CUDNN_VERSION")
    cuda = toolkit.split(".")[0]
    assert cuda_majors(resolved["torch"]) == {cuda}, resolved["torch"]["version"]
    assert cuda_majors(resolved["onnxruntime-gpu"], extra="cuda") == {cuda}
    assert cudnn_majors(resolved["torch"]) == cudnn_majors(resolved["onnxruntime-gpu"], extra="cudnn") == {"9"}
    needs = {Requirement(text).name: Requirement(text) for text in resolved["torch"]["requires_dist"]
             if Requirement(text).name in ("cuda-toolkit", "nvidia-cudnn-cu13")}
    assert str(needs["cuda-toolkit"].specifier) == f"=={toolkit}"
    assert {"cudart", "cublas", "curand"} <= needs["cuda-toolkit"].extras  # what libcaffe links, besides cuDNN
    assert str(needs["nvidia-cudnn-cu13"].specifier) == f"=={cudnn}"
    assert resolved["nvidia-cudnn-cu13"]["version"] == cudnn
    assert "onnxruntime" not in resolved  # the CPU build would shadow onnxruntime-gpu
    assert resolved["numpy"]["version"].startswith("2.")


@pytest.mark.slow
def test_cpu_image_resolves_without_any_cuda(tmp_path: Path) -> None:
    """The CPU image's requirements but torch (which comes from PyTorch's CPU index, not PyPI, whose Linux torch is
    the CUDA build) resolve from PyPI to no CUDA or GPU package."""
    without_torch = Image("Dockerfile", "harness (CPU_ONLY=1) but torch", ("requirements", "python-cpu-only-1"))
    without_torch.requirements = [r for r in CPU.requirements if Requirement(r).name != "torch"]
    without_torch.constraints = []
    resolved = resolve(without_torch, tmp_path)
    assert {"onnxruntime", "opencv-python-headless", "pandas", "nvidia-ml-py"} <= set(resolved)
    assert not {name for name in resolved if name.startswith(("nvidia-", "cuda-")) and name != "nvidia-ml-py"}
    assert "onnxruntime-gpu" not in resolved
    assert resolved["numpy"]["version"].startswith("2.")  # pycaffe of the bundle is built against NumPy 2


@pytest.mark.slow
def test_paper_image_resolves_for_its_python_and_glibc(tmp_path: Path) -> None:
    resolved = resolve(PAPER, tmp_path)
    assert PAPER.python == "3.10" and PAPER.glibc == 23
    assert resolved["numpy"]["version"].startswith("2.")
    assert resolved["protobuf"]["version"] == "3.20.3"
    assert {"six", "opencv-python-headless", "nvidia-ml-py", "pandas"} <= set(resolved)
    assert "torch" not in resolved and "onnxruntime-gpu" not in resolved  # CUDA 8 has neither
