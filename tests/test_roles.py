"""Role bootloaders: shipped templates, rendering, project overrides, `roles export`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shopfloor import roles
from shopfloor.errors import ConflictError, ShopfloorError

from .conftest import CliRun

VALUES = {
    "task_id": "T-0042",
    "task_file": "/repo/tasks/active/T-0042-retry.md",
    "task_text": "---\nid: T-0042\n---\n# Retry $HOME sends\n",
    "workdir": "/repo/.shopfloor/worktrees/T-0042",
    "result_file": "/repo/.shopfloor/runs/R-1/result.json",
    "attempt": "2",
    "max_attempts": "3",
    "checks": "pytest -q",
    "previous_attempt": "QA said: test_backoff times out.",
    "diff": "+retry()",
    "check_output": "`pytest -q` exit 0: 12 passed",
}
PLACEHOLDER = re.compile(r"\$\{?[a-z_]+\}?")


@pytest.mark.parametrize("role", roles.ROLES)
def test_each_template_renders_with_every_placeholder_filled(role: str) -> None:
    """Rule: each shipped bootloader renders with no placeholder left, the task and result
    contract included."""
    text = roles.render(role, None, VALUES)
    leftovers = set(PLACEHOLDER.findall(text)) - {"$HOME"}  # $HOME is the task's own text
    assert not leftovers, leftovers
    assert VALUES["task_id"] in text and VALUES["task_file"] in text
    assert VALUES["task_text"] in text  # substituted once, not re-expanded
    assert f"Write your result as JSON to the file {VALUES['result_file']}" in text
    assert '"outcome": "ok"' in text and "```json" in text


def test_pm_asks_for_acceptance_criteria_and_a_test_plan() -> None:
    """Rule: the PM writes a spec with acceptance criteria and a test plan."""
    text = roles.default_text("pm")
    assert "## Spec" in text and "Acceptance criteria" in text and "Test plan" in text


def test_coder_implements_only_the_spec() -> None:
    """Rule: the Coder implements the spec, nothing more, and never commits."""
    text = roles.default_text("coder")
    assert "Implement exactly the spec" in text and "Do not commit" in text


def test_qa_judges_spec_diff_and_check_output_and_returns_a_verdict() -> None:
    """Rule: QA judges against the spec, the diff and the captured checks, with a verdict."""
    text = roles.render("qa", None, VALUES)
    assert VALUES["diff"] in text and VALUES["check_output"] in text and "## Spec" in text
    assert "`verdict`: `pass` or `fail` — required from QA" in text
    assert "If any check failed, the verdict is `fail`" in text
    assert "verdict" not in roles.render("coder", None, VALUES)


def test_hotfix_carries_the_three_rules_and_the_hard_limits() -> None:
    """Rule (DESIGN 'Hotfix Protocol'): speed over elegance, no refactoring; contain the error;
    record verification steps in ## Verification, then stop; never commit or move the file."""
    text = roles.default_text("hotfix")
    rules = text[text.index("## The three rules") : text.index("## Hard limits")]
    assert "1. **Speed over elegance. No refactoring.**" in rules
    assert "2. **Contain the error.**" in rules and "guard the failing call" in rules
    assert "3. **Record manual verification steps, then stop.**" in rules
    assert "`## Verification`" in rules and "Then stop." in rules
    limits = text[text.index("## Hard limits") :]
    assert "Do **not** commit" in limits
    assert "Do **not** move, rename or delete the task file" in limits


def test_a_project_override_wins(tmp_path: Path) -> None:
    """Rule: .shopfloor/roles/<role>.md replaces the shipped template for that role only."""
    override = roles.override_path(tmp_path, "qa")
    override.parent.mkdir(parents=True)
    override.write_text("Custom QA for $task_id.\n$result_contract")
    text = roles.render("qa", tmp_path, VALUES)
    assert text.startswith("Custom QA for T-0042.\n") and "`verdict`" in text
    assert roles.render("pm", tmp_path, VALUES) == roles.render("pm", None, VALUES)


def test_unknown_role_lists_the_roles() -> None:
    """Rule: unknown names fail listing what exists."""
    with pytest.raises(ShopfloorError, match=r"unknown role 'ceo' \(available: pm, coder, qa"):
        roles.template_text("ceo")


def test_export_writes_four_files_and_never_clobbers(tmp_path: Path) -> None:
    """Rule: export writes the defaults to .shopfloor/roles/; refuses to overwrite unless forced."""
    written = roles.export(tmp_path)
    assert sorted(p.name for p in written) == ["coder.md", "hotfix.md", "pm.md", "qa.md"]
    for path in written:
        assert path.read_text() == roles.default_text(path.stem)
    edited = roles.override_path(tmp_path, "pm")
    edited.write_text("my PM")
    with pytest.raises(ConflictError, match=r"already customised: .*pm\.md.*--force"):
        roles.export(tmp_path)
    assert edited.read_text() == "my PM"
    roles.export(tmp_path, force=True)
    assert edited.read_text() == roles.default_text("pm")


def test_roles_export_and_show_on_the_command_line(project: Path, cli: CliRun) -> None:
    """Rule: `roles export` writes 4 files, refuses a second time (exit 5) without --force;
    `roles show` prints the template in use."""
    first = cli(project, "roles", "export")
    assert first.returncode == 0, first.stderr
    assert sorted(first.stdout.split()) == sorted(
        ["wrote"] * 4 + [f".shopfloor/roles/{r}.md" for r in roles.ROLES]
    )
    (project / ".shopfloor" / "roles" / "hotfix.md").write_text("Our hotfix rules.\n")
    again = cli(project, "roles", "export")
    assert again.returncode == 5 and "--force" in again.stderr and "Traceback" not in again.stderr
    shown = cli(project, "roles", "show", "hotfix")
    assert shown.returncode == 0 and shown.stdout == "Our hotfix rules.\n"
    assert cli(project, "roles", "export", "--force").returncode == 0
    assert cli(project, "roles", "show", "hotfix").stdout == roles.default_text("hotfix")
    assert cli(project, "roles", "show", "ceo").returncode == 2
