"""Role bootloaders: prompt templates shipped with the package, overridable per project.

A project overrides a role by putting `.shopfloor/roles/<role>.md` next to its config;
`shopfloor roles export` writes the defaults there to start from. Templates use `$name`
placeholders (string.Template); unknown placeholders are left as they are.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from string import Template

from shopfloor import _fs
from shopfloor.errors import ConflictError, ShopfloorError
from shopfloor.paths import StatePaths, make_private_dir

ROLES = ("pm", "coder", "qa", "hotfix")

RESULT_CONTRACT = """\
## When you finish
Write your result as JSON to the file {result_file} (create it; it is yours alone):

```json
{json_example}
```

- `outcome`: `ok` if you did the job, `fail` if you could not.
- `summary`: one line saying what you did.
{verdict_line}- `notes`: free text for the humans and the next agent.

If you cannot write files, end your final message with that same JSON in a ```json fenced block.
"""


def _contract(role: str, result_file: str) -> str:
    if role == "qa":
        example = '{"outcome": "ok", "summary": "one line", "verdict": "pass", "notes": "..."}'
        verdict = "- `verdict`: `pass` or `fail` — required from QA.\n"
    else:
        example = '{"outcome": "ok", "summary": "one line", "notes": "..."}'
        verdict = ""
    return RESULT_CONTRACT.format(
        result_file=result_file, json_example=example, verdict_line=verdict
    )


def override_path(root: Path, role: str) -> Path:
    return StatePaths(root).role(role)


def default_text(role: str) -> str:
    _check_role(role)
    return _shipped(role)


@functools.cache
def _shipped(role: str) -> str:
    """A template shipped with the package: read once (it cannot change under a process)."""
    return resources.files(__package__).joinpath(f"{role}.md").read_text("utf-8")


def template_text(role: str, root: Path | None = None) -> str:
    """The project's override if there is one, else the shipped default."""
    _check_role(role)
    if root is not None:
        override = override_path(root, role)
        if override.is_file():
            return override.read_text("utf-8")
    return default_text(role)


def render(role: str, root: Path | None, values: dict[str, str]) -> str:
    """The bootloader for one run, with the result contract filled in."""
    filled = dict(values)
    filled.setdefault("result_contract", _contract(role, values.get("result_file", "$result_file")))
    return Template(template_text(role, root)).safe_substitute(filled)


def export(root: Path, force: bool = False) -> list[Path]:
    """Write the default templates to .shopfloor/roles/ for editing; never clobbers."""
    written = []
    existing = [r for r in ROLES if override_path(root, r).exists()]
    if existing and not force:
        names = ", ".join(f"{r}.md" for r in existing)
        raise ConflictError(f"already customised: {names}; use --force to overwrite them")
    for role in ROLES:
        path = override_path(root, role)
        make_private_dir(path.parent)
        _fs.atomic_write(path, default_text(role))
        written.append(path)
    return written


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ShopfloorError(f"unknown role {role!r} (available: {', '.join(ROLES)})")
