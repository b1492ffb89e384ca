"""Sweep files: the YAML form of a sweep (networks, backends, batches, devices, modes, seed, settings,
slurm).

Every key has one validator in :data:`SWEEP_KEYS`; a value of the wrong type (a nested list, ``true``
for a batch, a number for a network, an empty list) is one line naming the file and the key, before
anything runs. A new key is one entry in the table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.files import read_regular_file
from harness.measure.devices import parse_device
from harness.measure.settings import CPU_SETTINGS, apply_overrides

# (value, where) -> the value to use; raises HarnessError starting with ``where`` ("sweep.yaml: 'batches'").
Validator = Callable[[Any, str], Any]


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return f"a {'list' if isinstance(value, list) else 'mapping'}"
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HarnessError(f"{where} must be a non-empty string, got {_shown(value)}")
    return value


def positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:  # YAML's true is not a batch of 1
        raise HarnessError(f"{where} must be a positive integer, got {_shown(value)}")
    return value


def seed(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HarnessError(f"{where} must be an integer >= 0, got {_shown(value)}")
    return value


def device(value: Any, where: str) -> str:
    name = text(value, where)
    try:
        parse_device(name)
    except HarnessError as exc:
        raise HarnessError(f"{where}: {exc}") from None
    return name


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise HarnessError(f"{where} must be true or false, got {_shown(value)}")
    return value


def mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise HarnessError(f"{where} must be a mapping of names to values, got {_shown(value)}")
    return value


def settings(value: Any, where: str) -> dict[str, Any]:
    value = mapping(value, where)
    prefix = f"{where.rsplit(':', 1)[0]}: settings."
    try:
        apply_overrides(CPU_SETTINGS, value, where=prefix)  # names the file in a value's error
    except HarnessError as exc:
        if not str(exc).startswith(prefix):  # an unknown setting: its message names no file
            raise HarnessError(f"{where}: {exc}") from None
        raise
    return value


def list_of(item: Validator) -> Validator:
    """A non-empty list whose every item passes ``item`` (so a nested list is an error)."""
    def check(value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise HarnessError(f"{where} must be a list, got {_shown(value)}")
        if not value:
            raise HarnessError(f"{where} is an empty list (leave the key out for the default)")
        return [item(v, f"{where} item {i + 1}") for i, v in enumerate(value)]
    return check


SWEEP_KEYS: dict[str, Validator] = {
    "networks": list_of(text),
    "backends": list_of(text),
    "batches": list_of(positive_int),
    "devices": list_of(device),
    "modes": list_of(text),
    "seed": seed,
    "settings": settings,
    "slurm": mapping,  # --executor slurm's options: harness.executors.slurm.SlurmOptions checks each one
    "layer_profiles": boolean,  # also a layer profile of every configuration (harness.layertime; local executor)
}


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one silently;
    the YAML spec requires keys to be unique)."""


def _unique_keys_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    first: dict[Any, yaml.Mark] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *base": merged keys may be overridden
            continue
        key = loader.construct_object(key_node)
        try:
            earlier = first.get(key)
        except TypeError:  # an unhashable key: construct_mapping says so
            continue
        if earlier is not None:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {_shown(key)} (first given at "
                                                    f"{earlier.line + 1}:{earlier.column + 1})", key_node.start_mark)
        first[key] = key_node.start_mark
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_keys_mapping)


def load_sweep_yaml(path: Path) -> dict[str, Any]:
    """A sweep file: the keys of :data:`SWEEP_KEYS` (all optional), each value checked. Anything but a
    regular file (a FIFO would wait for a writer forever) and a key given twice are refused in one line."""
    raw = read_regular_file(path, "sweep config")
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_UniqueKeyLoader)
    except UnicodeDecodeError as exc:
        raise HarnessError(f"{path}: byte {exc.start} is not UTF-8 (a sweep file is YAML text)") from None
    except RecursionError:
        raise HarnessError(f"{path}: nested too deeply to be a sweep file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            problem = getattr(exc, "problem", None) or "syntax error"
            raise HarnessError(f"{path}:{mark.line + 1}:{mark.column + 1}: {problem} (not valid YAML)") from None
        raise HarnessError(f"{path}: not valid YAML ({str(exc).splitlines()[0][:200]})") from None
    data = data or {}
    if not isinstance(data, dict):
        raise HarnessError(f"{path}: must be a mapping of {'/'.join(SWEEP_KEYS)}, got a {type(data).__name__}")
    extra = [str(k) for k in data if k not in SWEEP_KEYS]
    if extra:
        raise HarnessError(f"{path}: unknown sweep key(s) {', '.join(sorted(s[:40] for s in extra))} "
                           f"(allowed: {', '.join(sorted(SWEEP_KEYS))})")
    return {key: SWEEP_KEYS[key](value, f"{path}: '{key}'") for key, value in data.items()}
