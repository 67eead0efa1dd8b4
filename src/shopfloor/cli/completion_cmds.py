"""`shopfloor completion SHELL`: click's own completion script for bash, zsh or fish."""

from __future__ import annotations

import click

#: The environment variable click's completion protocol uses for the `shopfloor` program.
COMPLETE_VAR = "_SHOPFLOOR_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


def register(app: click.Group) -> None:
    app.add_command(completion_cmd)


@click.command("completion", short_help="Print the shell completion script (bash, zsh, fish).")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_cmd(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL: commands, options and choices complete on TAB.

    Load it from the shell's startup file: bash `eval "$(shopfloor completion bash)"` in
    ~/.bashrc (bash 4.4 or newer), zsh `eval "$(shopfloor completion zsh)"` in ~/.zshrc,
    fish `shopfloor completion fish | source` in ~/.config/fish/config.fish.
    """
    from click.shell_completion import get_completion_class

    completion = get_completion_class(shell)
    assert completion is not None  # the Choice admits only shells click supports
    root = ctx.find_root().command
    click.echo(completion(root, {}, "shopfloor", COMPLETE_VAR).source())
