"""The command line. Errors are turned into one line and an exit code here, and only here.

Exit codes: 0 success, 1 error, 2 usage error, 4 no such task, 5 the board needs a human
(conflict), 130 interrupted. SHOPFLOOR_RAISE_ERRORS=1 shows the traceback instead.

Importing this module is cheap: click and the commands load on first use of `app` or when
`main` needs them. `status --json` to a program is answered before that (`_fast`), from the
daemon or the status index, with neither click nor the task parser loaded.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shopfloor.cli._app import app as app


def __getattr__(name: str) -> Any:
    if name == "app":  # the click group, built on first use (PEP 562)
        from shopfloor.cli._app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    try:
        answered = _fast(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)
    if answered:
        sys.exit(0)
    _main(argv)


def _fast(args: list[str]) -> bool:
    """`[-C DIR] status --json` to a program, answered without click; False: not this case
    (a terminal, other words, no project, files to quarantine), the full CLI decides."""
    directory = None
    if len(args) == 4 and args[0] in ("-C", "--directory"):
        directory, args = args[1], args[2:]
    if args != ["status", "--json"] or sys.stdout.isatty():
        return False
    if directory is not None and not os.path.isdir(directory):
        return False  # click says what is wrong with it
    from shopfloor import statusd

    try:
        root = statusd.find_root(directory)
        text = None if root is None else statusd.status_text(root)
    except OSError:  # an unreadable folder and the like: the full CLI says what is wrong
        return False
    if text is None:
        return False
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return True


def _main(argv: list[str] | None) -> None:
    import click

    from shopfloor.cli._app import app
    from shopfloor.display import safe_lines
    from shopfloor.errors import ShopfloorError

    try:
        app.main(args=argv, prog_name="shopfloor", standalone_mode=False)
    except ShopfloorError as exc:
        if os.environ.get("SHOPFLOOR_RAISE_ERRORS"):
            raise
        click.echo(f"Error: {safe_lines(str(exc))}", err=True)  # it may quote a title
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # `shopfloor status | head`: the reader left; that is not an error.
        sys.stderr.close()
        sys.exit(0)
    sys.exit(0)


__all__ = ["app", "main"]
