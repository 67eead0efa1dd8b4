"""precedence.Precedence: bulk loops wait while a hotfix starts, never for long, never twice."""

from __future__ import annotations

import threading
import time

from shopfloor.precedence import Precedence


def test_an_open_gate_costs_no_wait() -> None:
    gate = Precedence(longest=5.0)
    began = time.monotonic()
    for _ in range(10_000):
        gate.give_way()
    assert time.monotonic() - began < 1.0


def test_a_held_gate_waits_until_its_last_holder_releases() -> None:
    gate = Precedence(longest=5.0)
    gate.hold("event")
    gate.hold("HOTFIX-a")
    passed = threading.Event()

    def bulk() -> None:
        gate.give_way()
        passed.set()

    thread = threading.Thread(target=bulk)
    thread.start()
    gate.release("event")
    assert not passed.wait(0.2)  # HOTFIX-a still holds it
    gate.release("HOTFIX-a")
    assert passed.wait(5.0)
    thread.join(5.0)
    assert not gate.held and gate.holders() == frozenset()


def test_a_forgotten_holder_stalls_a_loop_only_briefly_and_not_twice_in_a_row() -> None:
    gate = Precedence(longest=0.2)
    gate.hold("HOTFIX-never-released")
    began = time.monotonic()
    gate.give_way()
    first = time.monotonic() - began
    assert 0.15 <= first < 2.0
    began = time.monotonic()
    gate.give_way()  # ran out once: the board gets as long again before the next wait
    assert time.monotonic() - began < 0.1


def test_open_drops_every_holder() -> None:
    gate = Precedence(longest=5.0)
    gate.hold("a")
    gate.hold("b")
    gate.open()
    began = time.monotonic()
    gate.give_way()
    assert time.monotonic() - began < 0.1
    assert gate.holders() == frozenset()
