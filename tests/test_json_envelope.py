"""Every `--json` document shares one envelope (a `schema` key) and types its numbers one way."""

from __future__ import annotations

import json
from pathlib import Path

from shopfloor import actions
from tests.support import make_project, shopfloor


def document(root: Path, *args: str) -> dict[str, object]:
    value = json.loads(shopfloor(root, *args, "--json", check=False).stdout)
    assert isinstance(value, dict), args  # an object, never a bare list
    return value


def test_every_json_document_has_the_schema_key(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    assert document(root, "new", "a request")["schema"] == 1
    assert document(root, "hotfix", "db down")["schema"] == 1
    assert document(root, "status")["schema"] == 1
    assert document(root, "show", "T-0001")["schema"] == 1
    assert document(root, "doctor")["schema"] == 1


def test_dollars_are_floats_even_when_zero(tmp_path: Path) -> None:
    root = make_project(tmp_path)
    shopfloor(root, "new", "a request")
    text = shopfloor(root, "status", "--json").stdout
    spend = json.loads(text)["spend"]
    assert spend == {"today_usd": 0.0, "total_usd": 0.0, "by_task": {}}
    assert '"total_usd": 0.0' in text and '"today_usd": 0.0' in text
    shown = shopfloor(root, "show", "T-0001", "--json").stdout
    assert '"cost_usd": 0.0' in shown
    spent = actions.spend_json({"T-1": 1}, 0)  # ints in (a CLI's "cost": 0), floats out
    assert [type(v) for v in (spent["today_usd"], spent["total_usd"], spent["by_task"]["T-1"])] == [
        float,
        float,
        float,
    ]
