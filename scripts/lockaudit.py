"""``make audit``: known vulnerabilities in the locked dependencies, or an honest "nothing checked".

    python scripts/lockaudit.py [requirements/runtime.txt ...]

Runs pip-audit on each lock (hash-checked, without installing it) and reads its JSON.
pip-audit exits 0 when it could not reach its vulnerability service (every package
"could not be audited"), which would read as a pass; this refuses that: every package
that was not checked is counted, and any unchecked package makes the audit fail with a
message saying so. Exit status: 0 all checked and clean, 1 vulnerabilities found,
2 something could not be checked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

LOCKS = (
    "requirements/authoring.txt",
    "requirements/runtime.txt",
    "requirements/runtime-gpu.txt",
    "requirements/dev.txt",
    "requirements/serving.txt",
)


def audit(lock: str) -> tuple[int, list[str], list[str]]:
    """(packages, vulnerabilities, unchecked) for one lock file."""
    tool = shutil.which("pip-audit") or str(Path(sys.executable).with_name("pip-audit"))
    done = subprocess.run(
        [
            tool,
            "--requirement",
            lock,
            "--require-hashes",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        message = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return 0, [], [f"pip-audit failed on {lock}: {message}"]
    deps = report.get("dependencies", [])
    vulns = [
        f"{d['name']} {d.get('version', '')}: {v.get('id')}"
        f" (fixed in {', '.join(v.get('fix_versions') or ['-'])})"
        for d in deps
        for v in d.get("vulns", [])
    ]
    unchecked = [f"{d['name']}: {d['skip_reason']}" for d in deps if d.get("skip_reason")]
    return len(deps), vulns, unchecked


def main() -> None:
    """Audit each lock; print a summary; exit 0, 1 or 2 as the module docstring says."""
    locks = sys.argv[1:] or list(LOCKS)
    worst = 0
    for lock in locks:
        total, vulns, unchecked = audit(lock)
        print(f"{lock}: {total} packages, {len(vulns)} known vulnerabilities, {len(unchecked)} not checked")
        for line in vulns:
            print(f"  VULNERABLE {line}")
        if unchecked:
            print(f"  NOT CHECKED, e.g. {unchecked[0]}")
            worst = 2
        elif vulns:
            worst = max(worst, 1)
    if worst == 2:
        print(
            "make audit: some packages were NOT checked (no vulnerability database reachable from here:"
            " pip-audit needs PyPI's JSON API or OSV); this is not a pass.",
            file=sys.stderr,
        )
    sys.exit(worst)


if __name__ == "__main__":
    main()
