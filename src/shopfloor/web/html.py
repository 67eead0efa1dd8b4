"""Small HTML building blocks shared by the board and the task page.

Every piece of someone's text goes through `esc` (html.escape, quotes included), so a
`<script>` in a title or a body is shown as text, never run. No templates, no markup in
strings that came from a file.
"""

from __future__ import annotations

import html

#: The static files every page loads (served under /static by `pages.page_routes`).
CSS = "/static/board.css"
DIFF_CSS = "/static/diff.css"
JS = "/static/board.js"


def esc(text: object) -> str:
    """Text made safe for an HTML element or a quoted attribute value."""
    return html.escape(str(text), quote=True)


def money(usd: float | None) -> str:
    """Dollars as a card shows them: empty for nothing spent."""
    if not usd:
        return ""
    return f"${usd:.2f}" if usd >= 0.01 else "<$0.01"


def age(seconds: float) -> str:
    """A run's age in the two largest units: `42s`, `3m12s`, `1h05m`."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def page(title: str, body: str, csrf: str, extra_css: tuple[str, ...] = ()) -> str:
    """A whole page: the shell around `body`. The CSRF token sits in a meta tag, where
    board.js reads it for the `X-CSRF-Token` header of every POST."""
    links = "".join(f'<link rel="stylesheet" href="{esc(h)}">' for h in (CSS, *extra_css))
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="dark light">'
        f'<meta name="csrf-token" content="{esc(csrf)}">'
        f"<title>{esc(title)}</title>{links}"
        f'<script src="{JS}" defer></script>'
        f"</head><body>{body}</body></html>\n"
    )


def button(label: str, action: str, task_id: str = "", extra: str = "", cls: str = "") -> str:
    """A button board.js turns into a POST to the JSON API (`data-action` names the call)."""
    target = f' data-task="{esc(task_id)}"' if task_id else ""
    klass = f' class="{esc(cls)}"' if cls else ""
    return (
        f'<button type="button" data-action="{esc(action)}"{target}{klass}{extra}>'
        f"{esc(label)}</button>"
    )
