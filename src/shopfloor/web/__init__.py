"""The web board: a Starlette app over the board's files and the journal (docs/web.md).

It keeps no state of its own: every request reads the task files and the journal, and every
write goes through `shopfloor.actions`, the same code the CLI and the chat bot call.
"""
