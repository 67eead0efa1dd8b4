"""The command line. Errors are turned into one line and an exit code here, and only here.

Exit codes: 0 success, 1 error, 2 usage error, 4 no such task, 5 the board needs a human
(conflict), 130 interrupted. SHOPFLOOR_RAISE_ERRORS=1 shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

import click

from shopfloor.cli._app import app
from shopfloor.display import safe_lines
from shopfloor.errors import ShopfloorError


def main(argv: list[str] | None = None) -> None:
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
