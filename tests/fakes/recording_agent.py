"""A `command` agent that keeps what each run saw, for rework and PR tests.

argv: RECORD_DIR. Each run N (counted per role) copies its prompt to RECORD_DIR/<role>-N.md and
the commits its working directory's HEAD contains (`git rev-list HEAD`) to
RECORD_DIR/<role>-N.head. The coder appends a line to work.txt in its workdir; QA's verdict is
the content of RECORD_DIR/verdict ("pass" when the file is absent), with scripted notes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def main() -> None:
    record = Path(sys.argv[1])
    record.mkdir(parents=True, exist_ok=True)
    role = os.environ["SHOPFLOOR_ROLE"]
    workdir = Path(os.environ["SHOPFLOOR_WORKDIR"])
    number = 1 + len(list(record.glob(f"{role}-*.md")))
    shutil.copyfile(os.environ["SHOPFLOOR_PROMPT_FILE"], record / f"{role}-{number}.md")
    heads = subprocess.run(
        ["git", "rev-list", "HEAD"], cwd=workdir, capture_output=True, text=True, check=False
    ).stdout
    (record / f"{role}-{number}.head").write_text(heads)
    result: dict[str, str] = {"outcome": "ok", "summary": f"{role} run {number}"}
    if role == "coder":
        with open(workdir / "work.txt", "a") as fh:
            fh.write(f"coder run {number}, attempt {os.environ.get('SHOPFLOOR_ATTEMPT')}\n")
    elif role == "qa":
        verdict_file = record / "verdict"
        verdict = verdict_file.read_text().strip() if verdict_file.exists() else "pass"
        result.update(verdict=verdict, notes=f"scripted QA {verdict}: mind the edge case")
    Path(os.environ["SHOPFLOOR_RESULT_FILE"]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
