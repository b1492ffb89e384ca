"""Sweep YAML files: every key's value checked by one table of validators, one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.measure.sweep_file import SWEEP_KEYS, load_sweep_yaml


def _load(tmp_path: Path, text: str | bytes) -> dict:
    path = tmp_path / "sweep.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return load_sweep_yaml(path)


def test_a_good_file(tmp_path: Path) -> None:
    data = _load(tmp_path, "networks: [alexnet, 1.0-SqNxt-23]\nbackends: [pytorch]\nbatches: [1, 8]\n"
                           "devices: [cpu, 'cuda:0']\nmodes: [eager-fp32]\nseed: 3\nsettings: {min_s: 2}\n")
    assert data == {"networks": ["alexnet", "1.0-SqNxt-23"], "backends": ["pytorch"], "batches": [1, 8],
                    "devices": ["cpu", "cuda:0"], "modes": ["eager-fp32"], "seed": 3, "settings": {"min_s": 2}}
    assert _load(tmp_path, "# nothing but a comment\n") == {}


@pytest.mark.parametrize("text, message", [
    ("batches: [true]", "'batches' item 1 must be a positive integer, got true"),
    ("batches: [1, [2, 4]]", "'batches' item 2 must be a positive integer, got a list"),
    ("batches: [0]", "'batches' item 1 must be a positive integer, got 0"),
    ("batches: []", "'batches' is an empty list (leave the key out for the default)"),
    ("batches: 4", "'batches' must be a list, got 4"),
    ("networks: [[alexnet]]", "'networks' item 1 must be a non-empty string, got a list"),
    ("networks: [1.0]", "'networks' item 1 must be a non-empty string, got 1.0"),
    ("networks:", "'networks' must be a list, got None"),
    ("devices: [gpu]", "'devices' item 1: unknown device 'gpu' (use cpu or cuda:N)"),
    ("devices: [{cuda: 0}]", "'devices' item 1 must be a non-empty string, got a mapping"),
    ("backends: [pytorch, null]", "'backends' item 2 must be a non-empty string, got None"),
    ("modes: {eager: 1}", "'modes' must be a list, got a mapping"),
    ("seed: [1, 2]", "'seed' must be an integer >= 0, got a list"),
    ("seed: false", "'seed' must be an integer >= 0, got false"),
    ("settings: [min_s]", "'settings' must be a mapping of names to values, got a list"),
    ("settings: {min_s: abc}", "settings.min_s: expected a number, got 'abc'"),
    ("networks: [alexnet]\nbatchez: [1]", "unknown sweep key(s) batchez"),
    ("[" * 5000, "nested too deeply to be a sweep file"),
    ("batches: [1]\nnetworks: [a]\nbatches: [8]", ":3:1: duplicate key 'batches' (first given at 1:1)"),
    ("settings: {min_s: 1, min_s: 2}", ":1:22: duplicate key 'min_s' (first given at 1:12)"),
    ("slurm:\n  partition: a\n  partition: b", ":3:3: duplicate key 'partition' (first given at 2:3)"),
])
def test_each_wrong_value_is_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(HarnessError) as err:
        _load(tmp_path, text)
    assert str(err.value).startswith(str(tmp_path / "sweep.yaml")) and message in str(err.value)
    assert "\n" not in str(err.value) and len(str(err.value)) < 300


def test_unreadable_sweep_files(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="byte 10 is not UTF-8"):
        _load(tmp_path, b"networks: \xff\n")
    with pytest.raises(HarnessError, match=r"cannot read sweep config \(it is a folder, not a regular file\)"):
        load_sweep_yaml(tmp_path)


def test_every_key_has_a_validator_that_rejects_a_wrong_type(tmp_path: Path) -> None:
    for key, check in SWEEP_KEYS.items():
        with pytest.raises(HarnessError, match=f"^x: '{key}'"):
            check(object(), f"x: '{key}'")


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """YAML's "<<: *base" then a key of the base given again is an override, not a duplicate."""
    data = _load(tmp_path, "settings: &base {min_s: 1, warmup_iters: 2}\nslurm:\n  <<: {time: '5'}\n  time: '9'\n")
    assert data["slurm"] == {"time": "9"} and data["settings"] == {"min_s": 1, "warmup_iters": 2}
