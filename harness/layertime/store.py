"""Layer profiles in a results directory: ``layer-profiles.jsonl`` (and ``layer-profiles-<writer>.jsonl``
shards), beside the timing records' ``results*.jsonl`` and never among them.

The files follow the results store's rules (:mod:`harness.results.store`): one writer per file, one
record per line appended with fsync, a truncated or unreadable line kept on disk and counted, and the
ONE merge rule (per configuration key, the newest final record wins), so that ``harness layers --out``
resumes as ``harness bench`` does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.files import name_part
from harness.layertime.record import LayerProfile
from harness.results.schema import loads
from harness.results.store import Merged, append_record, check_appendable, read_results

PROFILES_FILE = "layer-profiles.jsonl"
PROFILES_GLOB = "layer-profiles*.jsonl"


class LayerProfileStore:
    """The layer profiles of one results directory; ``writer`` names this writer's own shard."""

    def __init__(self, directory: str | os.PathLike[str], writer: str | None = None) -> None:
        self.dir = Path(directory)
        stem = PROFILES_FILE.removesuffix(".jsonl")
        self.path = self.dir / (PROFILES_FILE if writer is None else f"{stem}-{name_part(writer)}.jsonl")

    def append(self, profile: LayerProfile) -> Path:
        return append_record(self.path, profile)

    def check_writable(self) -> None:
        check_appendable(self.path, "layer profiles")

    def read(self) -> Merged:
        return read_layer_profiles([self.dir])


def read_layer_profiles(directories: Iterable[str | os.PathLike[str]]) -> Merged:
    """Every layer-profile file of ``directories``, read and merged as timing records are (``Merged.records``
    holds :class:`LayerProfile` records here)."""
    return read_results(directories, PROFILES_GLOB, lambda raw: LayerProfile.from_dict(loads(raw)), "layer profiles")


def rows_frame(profiles: Iterable[LayerProfile]) -> Any:
    """One pandas row per row of every ok profile: the configuration, the row and its analyzer figures
    (``harness.layertime.join.row_figures`` adds the rates)."""
    import pandas as pd

    from harness.layertime.join import row_figures

    out = []
    for profile in profiles:
        if profile.status != "ok":
            continue
        for row in profile.rows:
            out.append({"key": profile.key, "network": profile.config.network, "backend": profile.config.backend,
                        "mode": profile.config.mode, "device": profile.config.device, "batch": profile.config.batch,
                        "hardware": profile.config.hardware, "contended": bool(profile.contended),
                        **row_figures(profile, row)})
    return pd.DataFrame(out)
