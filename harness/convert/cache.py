"""Where converted artefacts (.caffemodel, .onnx, generated prototxts) are cached, the keys that name
them, and how they are written and checked.

A key is a hash of everything the artefact depends on (the graph's layers and hyperparameters, the
batch, which weights - :class:`harness.convert.weights.WeightSource` names them without drawing
them -, the exporter's version), so a changed prototxt or seed never reuses a stale file.
``HARNESS_CACHE_DIR`` overrides the location (tests point it at a temporary folder).

A cached file is trusted only when it is intact: every file is written under a temporary name and
renamed into place (a reader never sees half a file), and after the files of an artefact are in place
a manifest beside the first one records each file's size and SHA-256. A file that was truncated,
damaged or left without a manifest (a crash between rename and manifest, an older harness) is not
intact and is built again. Nothing relies on file locks, so a cache on a network filesystem works;
two processes that build the same artefact at once both write whole files, and the last rename wins.

Hashing is what makes a check cost (an AlexNet export is 240 MB), so a check that hashed the files stamps
the manifest with each file's identity (inode, size, modification and change times), and a later check
whose files still have exactly that identity trusts the hash instead of reading them again: a sweep's
hundreds of workers read their artefacts without hashing them. Writing to a file, or replacing it, changes
its change time (which no user call can set back), so a file changed after the stamp is hashed again. As
with git's "racily clean" files, a stamp only counts for files whose change time was at least
:data:`SETTLED_S` older than the stamp: a write within the same clock tick as the stamp could leave the
times unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.errors import BackendFailed, HarnessError
from harness.ir.graph import Graph
from harness.ir.textformat import Message, iter_messages

MANIFEST_SUFFIX = ".manifest.json"
#: how much older than a stamp a file's change time must be for the stamp to stand for its hash
SETTLED_S = 2.0


class CacheError(HarnessError):
    """A cached artefact that cannot be written (a full disk, a read-only cache folder)."""


def cache_dir(kind: str) -> Path:
    root = os.environ.get("HARNESS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "harness")
    path = Path(root) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def _message_text(msg: Message) -> str:
    """A canonical rendering of a message that ignores file locations (any depth: no recursion). Each
    message's fields are listed with the index of every sub-message, in depth-first order."""
    messages = list(iter_messages(msg))
    index = {id(m): i for i, m in enumerate(messages)}
    return "\n".join(";".join(f"{f.name}=" + (f"#{index[id(f.value)]}" if isinstance(f.value, Message)
                                               else f"{type(f.value).__name__}:{f.value!r}") for f in m.fields)
                     for m in messages)


def graph_fingerprint(graph: Graph) -> str:
    h = hashlib.sha256()
    for spec in graph.inputs:
        h.update(f"input {spec.name} {spec.shape}\n".encode())
    for layer in graph.layers:
        h.update(f"{layer.name}|{layer.type}|{layer.bottoms}|{layer.tops}|{_message_text(layer.spec)}\n".encode())
    return h.hexdigest()[:16]


def file_fingerprint(path: str | Path) -> str:
    return _sha256(Path(path))[:16]


def prototxt_file(graph: Graph, backend: str) -> Path:
    """The prototxt file an engine that reads files itself (Caffe, OpenCV) loads: the graph's source, or
    for a zoo graph with no checked-out file (source ``zoo:<name>``) its generated text, cached once."""
    if graph.source.startswith("zoo:"):
        from harness.zoo import zoo_prototxt

        name = graph.source.removeprefix("zoo:")
        text = zoo_prototxt(name)
        data = text.encode("utf-8")
        path = cache_dir("prototxt") / f"{name}-{hashlib.sha256(data).hexdigest()[:16]}.prototxt"
        if not _holds(path, data):  # missing or damaged: the text is at hand, so compare it whole
            write_atomic(path, lambda tmp: tmp.write_bytes(data))
        return path
    path = Path(graph.source)
    if not path.is_file():
        raise BackendFailed(f"{backend} reads the prototxt file itself, but '{graph.source}' is not a file")
    return path


def cache_key(*parts: object) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:20]


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Make ``path`` by ``write(temporary)`` and a rename, so that no reader ever sees a partial file.
    On any failure the temporary file is removed; an OSError (a full disk) becomes a CacheError."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise CacheError(f"cannot write {path} ({exc.strerror or exc})") from None
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise CacheError(f"cannot write {path} ({exc.strerror or exc})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def manifest_path(primary: Path) -> Path:
    return primary.with_name(primary.name + MANIFEST_SUFFIX)


def record(primary: Path, files: Sequence[Path]) -> None:
    """Write the manifest of an artefact whose ``files`` (all in ``primary``'s folder) are in place."""
    entries = {f.name: {"size": f.stat().st_size, "sha256": _sha256(f)} for f in files}
    text = json.dumps({"files": entries}, indent=1, sort_keys=True)
    write_atomic(manifest_path(primary), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _identity(stat: os.stat_result) -> list[int]:
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def intact(primary: Path) -> bool:
    """Whether every file the manifest of ``primary`` lists is there with its recorded size and hash (read
    again unless the manifest's stamp says the files are unchanged since they were last hashed)."""
    try:
        manifest = json.loads(manifest_path(primary).read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or primary.name not in files:
            return False
        stats = {name: primary.with_name(name).stat() for name in files}
        if any(stats[name].st_size != entry["size"] for name, entry in files.items()):
            return False
        if manifest.get("stamp") == {name: _identity(s) for name, s in stats.items()}:
            return True
        for name, entry in files.items():
            if _sha256(primary.with_name(name)) != entry["sha256"]:
                return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    settled = time.time_ns() - int(SETTLED_S * 1e9)
    if all(s.st_ctime_ns < settled for s in stats.values()):
        stamped = {**manifest, "stamp": {name: _identity(s) for name, s in stats.items()}}
        text = json.dumps(stamped, indent=1, sort_keys=True)
        with contextlib.suppress(CacheError):  # a read-only cache is still a cache: hashed each time
            write_atomic(manifest_path(primary), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return True


def cached(primary: Path, build: Callable[[Path], Sequence[Path]]) -> Path:
    """``primary``, built by ``build(primary)`` (which returns every file it wrote, each by
    :func:`write_atomic`) unless the cache holds it intact; the manifest is written last."""
    if not intact(primary):
        record(primary, build(primary))
    return primary
