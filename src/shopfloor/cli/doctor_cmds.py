"""`shopfloor doctor`: is every configured agent ready to run?"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from shopfloor.cli._common import console, print_json, project

if TYPE_CHECKING:
    from shopfloor.doctor import AgentCheck


def register(app: click.Group) -> None:
    app.add_command(doctor_cmd)


@click.command("doctor", short_help="Can every role run? Agents, binaries, versions, logins.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per agent, in a list.")
@click.pass_context
def doctor_cmd(ctx: click.Context, as_json: bool) -> None:
    """Check each agent: binary, version (tested or not), credentials; advice for problems.

    Exits 1 when an agent that plays a role cannot run.
    """
    from shopfloor import doctor  # pydantic and friends: only for this command, not `status`

    checks = doctor.check_all(project(ctx).config)
    if as_json:
        print_json([c.to_json() for c in checks])
    else:
        _print(checks)
    if doctor.role_problems(checks):
        sys.exit(1)


def _print(checks: list[AgentCheck]) -> None:
    out = console()
    out.soft_wrap = True  # long paths and advice stay on one line, to copy and paste
    for check in checks:
        mark = "[green]ok[/]" if check.ok else "[red]problem[/]"
        roles = "plays " + ", ".join(check.roles) if check.roles else "plays no role"
        version = check.version or "?"
        tested = ""
        if check.version and check.tested_version:
            tested = " (tested)" if check.version == check.tested_version else " (untested)"
        out.print(f"{mark}  [bold]{check.agent}[/]  {check.backend} {version}{tested}  ({roles})")
        if check.binary:
            out.print(f"      binary: {check.binary}")
        if check.credentials:
            out.print(f"      credentials: {check.credentials}")
        for error in check.errors:
            out.print(f"      [red]error[/]: {error}")
        for warning in check.warnings:
            out.print(f"      [yellow]warning[/]: {warning}")
