"""PyTorch ``compile`` mode: the record carries the compile time, proof that a compiled graph ran, and
what inductor's on-disk cache did; a fallback to eager is a failure with its reason, never a silent
"compile" result."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from harness.backends.base import RunTarget, get_backend  # noqa: E402
from harness.errors import BackendFailed  # noqa: E402
from harness.ir.build import load_graph  # noqa: E402


def small_net(channels: int) -> str:
    return f"""
input: "data"
input_shape {{ dim: 1 dim: 3 dim: 8 dim: 8 }}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param {{ num_output: {channels} kernel_size: 3 }} }}
layer {{ name: "relu" type: "ReLU" bottom: "conv" top: "conv" }}
"""


@pytest.fixture(autouse=True)
def _fresh_dynamo(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """Dynamo's per-code-object caches are process-wide: start and leave them empty."""
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _load(channels: int):
    graph = load_graph(f"<net{channels}>", text=small_net(channels))
    return get_backend("pytorch").load(RunTarget(graph, f"net{channels}", 1, mode="compile"))


def test_compile_records_time_proof_and_cache() -> None:

    with _load(4) as session:
        first = session.info["compile"]
        assert session.info["compile_s"] > 0
        session.forward()
    assert first["compiled_graph_ran"] and first["fullgraph"]
    assert first["compiled_regions"] and first["inductor_graph_calls"] >= 1
    assert first["new_dynamo_graphs"] == 1
    cache = first["fx_graph_cache"]
    assert cache["enabled"] is True and any(Path(cache["dir"]).rglob("*"))  # inductor's cache, on disk
    assert cache["hit"] + cache["miss"] >= 1  # inductor looked the graph up in its cache

    with _load(4) as session:  # the same network again, in the same process: dynamo reuses its graph
        assert session.info["compile"]["new_dynamo_graphs"] == 0
        assert session.info["compile"]["compiled_graph_ran"]

    torch._dynamo.reset()  # dynamo forgets; inductor's FX graph cache still has the graph
    with _load(4) as session:
        again = session.info["compile"]
    assert again["new_dynamo_graphs"] == 1 and again["fx_graph_cache"]["hit"] >= 1


@pytest.mark.slow
def test_ninth_network_in_one_process_is_a_failure_not_a_silent_eager_run() -> None:
    """Every converted network shares CaffeNet.forward, so dynamo's recompile limit (8) would make the
    ninth run eager in one process. Here it is a failed configuration naming the reason (in a sweep
    every configuration gets a fresh worker and never meets the limit)."""
    limit = torch._dynamo.config.recompile_limit
    for channels in range(1, limit + 1):
        with _load(channels) as session:
            assert session.info["compile"]["compiled_graph_ran"], channels
    with pytest.raises(BackendFailed, match=rf"torch.compile failed: dynamo's recompile limit \({limit}\)"):
        _load(limit + 1)
