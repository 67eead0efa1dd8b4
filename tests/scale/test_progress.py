"""The worker's heartbeat pieces: the output tail a daemon follows, and the lost runs."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("temporalio")

from shopfloor.scale.contract import Progress
from shopfloor.scale.worker import TAIL_BYTES, OutputTail, lost_before


def follow(chunks: list[tuple[int, str]]) -> bytes:
    """What a daemon rebuilds from heartbeats: each chunk's bytes past what it has."""
    have = b""
    for offset, chunk in chunks:
        data = chunk.encode()
        assert offset <= len(have), "a gap: output lost between heartbeats"
        have += data[len(have) - offset :]
    return have


def test_the_tail_is_one_stream_of_stdout_then_stderr_with_offsets(tmp_path: Path) -> None:
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    out.write_bytes(b"")
    tail = OutputTail(tmp_path)
    seen = []
    written = b""
    for n in range(5):
        with open(out, "ab") as fh:
            fh.write(f"out {n}\n".encode())
        with open(err, "ab") as fh:
            fh.write(f"err {n} ✓\n".encode())
        written += f"out {n}\n".encode() + f"err {n} ✓\n".encode()
        tail.poll()
        seen.append(tail.view())
        tail.poll()  # nothing new: the same view
        assert tail.view() == seen[-1]
    assert seen[0][0] == 0
    assert follow(seen) == written


def test_a_flood_keeps_the_newest_bytes_cut_at_a_character(tmp_path: Path) -> None:
    (tmp_path / "stdout.log").write_bytes(("é" * TAIL_BYTES).encode())  # 2 bytes each
    tail = OutputTail(tmp_path)
    tail.poll()
    offset, chunk = tail.view()
    assert set(chunk) == {"é"} and len(chunk.encode()) <= TAIL_BYTES
    assert offset + len(chunk.encode()) == 2 * TAIL_BYTES


def test_no_run_folder_yet_is_an_empty_tail() -> None:
    tail = OutputTail()
    tail.poll()
    assert tail.view() == (0, "")


def test_lost_runs_are_carried_from_attempt_to_attempt() -> None:
    assert lost_before(1, []) == []
    first = Progress("w1", "R-3", 10, "x").__dict__
    assert lost_before(2, [first]) == [{"worker": "w1", "run_id": "R-3", "why": "heartbeat lapsed"}]
    second = Progress("w2", "R-9", 0, "", lost=lost_before(2, [first]))
    assert [x["worker"] for x in lost_before(3, [second])] == ["w1", "w2"]
    # An attempt that ended in an error of its own (a failed fetch) was not lost with a worker.
    failed = Progress("w3", "", 0, "", lost=[], ended="error: fetch failed").__dict__
    assert lost_before(4, [failed]) == []
    stopped = Progress("w4", "R-1", 0, "", ended="worker stopping").__dict__
    assert lost_before(5, [stopped]) == [
        {"worker": "w4", "run_id": "R-1", "why": "worker stopping"}
    ]
    # A worker that died before its first heartbeat reached the server: unnamed, still counted.
    assert lost_before(2, []) == [{"worker": "", "run_id": "", "why": "heartbeat lapsed"}]
