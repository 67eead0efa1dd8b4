"""Fixtures for scale-out tests: a real Temporal dev server, a cluster of clones around it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scale.cluster import Cluster, TemporalServer, started_server


@pytest.fixture
def temporal_server(tmp_path: Path) -> Iterator[TemporalServer]:
    """`temporal server start-dev` on free loopback ports (see `started_server`)."""
    server = started_server(tmp_path / "temporal")
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
