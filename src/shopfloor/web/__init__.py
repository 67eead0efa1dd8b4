"""The board in a browser: a Starlette app over the task files and the journal."""
