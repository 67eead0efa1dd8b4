"""Engines beyond one machine. `[scale] engine = "local"` (the default) needs none of this;
`engine = "temporal"` sends PM, Coder and QA runs to `shopfloor worker`s (docs/scale-out.md).

`contract` is what travels between the daemon and a worker (plain data, stdlib only: the
Temporal sandbox re-imports it). The daemon stays the only writer of task files and journal.
"""
