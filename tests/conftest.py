"""Shared test pieces: the tiny test network, and the ``needs_pycaffe`` marker.

``@pytest.mark.needs_pycaffe`` (or ``pytestmark = pytest.mark.needs_pycaffe``) skips a test when pycaffe
cannot be found; pycaffe is looked for once, and only when a collected test carries the marker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
PYCAFFE_SKIP_REASON = "pycaffe not available (build it with docker/build-caffe.sh)"


@pytest.fixture
def tiny_prototxt() -> Path:
    """Convolution (3 -> 4 channels, 3x3, pad 1) on 1x3x8x8, in-place ReLU, InnerProduct to 10: small
    enough to count by hand (the metric tests do)."""
    return DATA / "tiny.prototxt"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"needs_pycaffe: skipped when {PYCAFFE_SKIP_REASON.split(' (')[0]}")


def _pycaffe_missing() -> bool:
    from harness.backends.caffe.backend import find_pycaffe
    from harness.errors import BackendUnavailable

    try:
        find_pycaffe()
    except BackendUnavailable:
        return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("needs_pycaffe")]
    if marked and _pycaffe_missing():
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=PYCAFFE_SKIP_REASON))


@pytest.fixture
def cudnn_caffe(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CAFFE_ROOT at a GPU build of Caffe with cuDNN (HARNESS_TEST_CAFFE_GPU_ROOT, default /opt/caffe-cuda, as
    docs/caffe.md builds it), for the tests a CPU-only build cannot show; skips where there is none, fails
    instead where HARNESS_REQUIRE_CUDNN_CAFFE=1 (CI builds one: .ci/run)."""
    from harness.backends.caffe import backend as caffe_backend

    root = Path(os.environ.get("HARNESS_TEST_CAFFE_GPU_ROOT", "/opt/caffe-cuda"))
    if caffe_backend.read_build_info(root).get("CAFFE_WITH_CUDNN") != "1":
        why = f"no cuDNN build of Caffe at {root} (HARNESS_TEST_CAFFE_GPU_ROOT names one)"
        if os.environ.get("HARNESS_REQUIRE_CUDNN_CAFFE") == "1":
            pytest.fail(f"{why}, and HARNESS_REQUIRE_CUDNN_CAFFE=1 requires one")
        pytest.skip(why)
    monkeypatch.setenv("CAFFE_ROOT", str(root))
    caffe_backend.find_pycaffe.cache_clear()
    yield root
    caffe_backend.find_pycaffe.cache_clear()
