"""Docs that cannot drift: docs/cli.md's command reference is generated from the click
commands, and every relative link in the README and docs/ resolves to a file and heading."""

from __future__ import annotations

import re
from pathlib import Path

import click

from shopfloor.cli import _docs, app

ROOT = Path(__file__).resolve().parents[1]


def test_the_cli_reference_is_generated_from_the_commands() -> None:
    current = _docs.DOC.read_text("utf-8")
    assert _docs.updated(current, app) == current, (
        "docs/cli.md is stale: run `python -m shopfloor.cli._docs`"
    )


def test_the_reference_has_every_command_and_option() -> None:
    text = _docs.DOC.read_text("utf-8")
    region = text.split(_docs.BEGIN)[1].split(_docs.END)[0]
    for ctx in _docs.walk(click.Context(app, info_name="shopfloor")):
        assert f"### `{_docs._path(ctx)}`" in region
    for heading in ("`shopfloor doctor`", "`shopfloor hotfix close`", "`shopfloor completion`"):
        assert heading in region
    assert "| `--log FILE` |" in region and "| `-p, --priority [P0\\|P1\\|P2\\|P3]` |" in region


def test_the_check_fails_on_a_stale_reference_and_the_rewrite_fixes_it(tmp_path: Path) -> None:
    doc = tmp_path / "cli.md"
    stale = _docs.DOC.read_text("utf-8").replace("| `--followup` |", "| `--follow-up` |")
    doc.write_text(stale, "utf-8")
    assert _docs.main(["--check"], doc=doc) == 1
    assert _docs.main([], doc=doc) == 0
    assert _docs.main(["--check"], doc=doc) == 0
    assert doc.read_text("utf-8") == _docs.DOC.read_text("utf-8")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lowercased, punctuation dropped, spaces to hyphens."""
    seen: dict[str, int] = {}
    result = set()
    for heading in re.findall(r"^#{1,6} (.+)$", strip_code(markdown), re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def strip_code(markdown: str) -> str:
    return re.sub(r"^```.*?^```", "", markdown, flags=re.MULTILINE | re.DOTALL)


def broken_links(pages: list[Path]) -> list[str]:
    broken = []
    for page in pages:
        text = strip_code(page.read_text("utf-8"))
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file_part, _, anchor = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and anchor not in anchors(linked.read_text("utf-8")):
                broken.append(f"{page.name}: {target} (no such heading)")
    return broken


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    assert broken_links([ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]) == []


def test_the_link_check_sees_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Top\n## The lifecycle\n")
    page = tmp_path / "README.md"
    page.write_text("[ok](a.md#the-lifecycle) [gone](b.md) [no](a.md#events) [web](https://x.y)\n")
    assert broken_links([page]) == [
        "README.md: b.md (no such file)",
        "README.md: a.md#events (no such heading)",
    ]
