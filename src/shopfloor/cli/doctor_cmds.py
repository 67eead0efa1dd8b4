"""`shopfloor doctor`: can every role run? Which agent plays it, and is that agent ready?"""

from __future__ import annotations

import sys
from typing import Any

import click

from shopfloor.cli._common import console, plain, print_json, project
from shopfloor.errors import ConfigError


def register(app: click.Group) -> None:
    app.add_command(doctor_cmd)


@click.command("doctor", short_help="Can every role run? Agents, binaries, versions, logins.")
@click.option("--json", "as_json", is_flag=True, help="The documented JSON document (schema 1).")
@click.pass_context
def doctor_cmd(ctx: click.Context, as_json: bool) -> None:
    """Check every role and agent: which agent plays each role (set in shopfloor.toml or the
    default), its binary, version (tested or not) and credentials, with advice for problems.

    An empty or partial shopfloor.toml is explained: the roles with no agent, what their
    defaults would need, and `shopfloor init`. With `[scale] engine = "temporal"`: the
    engine's connection, the git remote workers use, and which workers poll for which agent
    (docs/scale-out.md). Exits 1 when a role cannot run, or the engine or remote cannot be used.
    """
    from shopfloor import doctor  # pydantic and friends: only for this command, not `status`

    proj = project(ctx)
    try:
        document = doctor.report(proj.config, proj.root)
    except ConfigError as exc:
        document = doctor.unloadable(str(exc))
    if as_json:
        print_json(document)
    else:
        _print(document)
    if not document["ok"]:
        sys.exit(1)


def _print(document: dict[str, Any]) -> None:
    out = console()
    out.soft_wrap = True  # long paths and advice stay on one line, to copy and paste
    if document["config_error"]:
        out.print(f"[red]problem[/]  {plain(document['config_error'])}")
    for role in document["roles"]:
        mark = "[green]ok[/]" if role["ok"] else "[red]problem[/]"
        line = f"{mark}  role [bold]{role['role']}[/] -> agent {plain(role['agent'])}"
        if not role["defined"]:
            out.print(f"{line}: {plain(role['problem'])}")
            continue
        if not role["configured"]:
            line += f" (the default: roles.{role['role']} is not set)"
        if role["problem"]:
            line += ", which cannot run (below)"
        out.print(line)
    for check in document["agents"]:
        _print_agent(out, check)
    if document.get("engine"):
        _print_engine(out, document["engine"])
    for line in document["advice"]:
        out.print(f"[yellow]advice[/]  {plain(line)}")
    roles_ok = all(role["ok"] for role in document["roles"]) and not document["config_error"]
    verdict = "every role can run" if roles_ok else "some roles cannot run"
    if roles_ok and not document["ok"]:  # the roles can, but not through the engine
        verdict = "the engine or its remote cannot be used: runs would wait"
    out.print(f"[bold]{verdict}[/]")


def _print_agent(out: Any, check: dict[str, Any]) -> None:
    mark = "[green]ok[/]" if check["ok"] else "[red]problem[/]"
    roles = "plays " + ", ".join(check["roles"]) if check["roles"] else "plays no role"
    version = check["version"] or "?"
    tested = ""
    if check["version"] and check["tested_version"]:
        tested = " (tested)" if check["version"] == check["tested_version"] else " (untested)"
    out.print(
        f"{mark}  agent [bold]{plain(check['agent'])}[/]  {check['backend']} {version}{tested}"
        f"  ({roles})"
    )
    if check["binary"]:
        out.print(f"      binary: {plain(check['binary'])}")
    if check["credentials"]:
        out.print(f"      credentials: {plain(check['credentials'])}")
    for error in check["errors"]:
        out.print(f"      [red]error[/]: {plain(error)}")
    for warning in check["warnings"]:
        out.print(f"      [yellow]warning[/]: {plain(warning)}")


def _print_engine(out: Any, engine: dict[str, Any]) -> None:
    """[scale] engine = "temporal": the connection, the remote, who polls which queue."""
    mark = "[green]ok[/]" if engine["ok"] else "[red]problem[/]"
    state = "connected" if engine["connected"] else "not connected"
    out.print(
        f"{mark}  engine [bold]temporal[/] {plain(engine['address'])} "
        f"namespace {plain(engine['namespace'])}: {state}"
    )
    remote = plain(engine["remote"])
    if engine["remote_url"]:
        reach = "reachable" if engine["remote_reachable"] else "not reachable"
        out.print(f"      remote: {remote} {plain(engine['remote_url'])} ({reach})")
    for queue in engine["queues"]:
        who = ", ".join(queue["pollers"]) or "no worker"
        what = f"agent {queue['agent']}" if queue["agent"] else "workflows"
        roles = f" ({', '.join(queue['roles'])})" if queue["roles"] else ""
        where = plain(queue["task_queue"])
        out.print(f"      {plain(what + roles)} on {where}: {plain(who)}")
    for error in engine["errors"]:
        out.print(f"      [red]error[/]: {plain(error)}")
    for warning in engine["warnings"]:
        out.print(f"      [yellow]warning[/]: {plain(warning)}")
