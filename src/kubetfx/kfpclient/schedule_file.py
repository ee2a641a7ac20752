"""The schedule file: recurring runs as code, read and checked before any request.

The format is documented in docs/submit-and-schedule.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetfx.kfpclient.cron import ScheduleError, kfp_cron

_SCHEDULE_KEYS = {"name", "pipeline", "version", "cron", "max_concurrency", "catchup", "params", "experiment"}


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule as written in a schedule file."""

    name: str
    pipeline: str
    version: str | None  # None: the pipeline's newest version at apply time
    cron: str  # as written
    kfp_cron: str  # as sent to KFP (6 fields or a descriptor)
    experiment: str
    max_concurrency: int = 1
    catchup: bool = False
    params: dict[str, Any] = field(default_factory=dict)


def load_schedules(path: str | Path) -> list[ScheduleSpec]:
    """Read and check a schedule file (format: docs/submit-and-schedule.md) before any request."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ScheduleError(f"{path}: no such schedule file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ScheduleError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("schedules"), list):
        raise ScheduleError(f"{path}: expected a mapping with a 'schedules' list")
    unknown = sorted(set(data) - {"experiment", "schedules"})
    if unknown:
        raise ScheduleError(f"{path}: unknown top-level field {unknown[0]!r}; fields: experiment, schedules")
    default_experiment = data.get("experiment")
    specs: list[ScheduleSpec] = []
    for index, item in enumerate(data["schedules"]):
        specs.append(_schedule(item, index, default_experiment, path))
    names = [s.name for s in specs]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise ScheduleError(f"{path}: schedule {duplicate!r} appears twice; names must be unique")
    return specs


def _schedule(item: Any, index: int, default_experiment: Any, path: Path) -> ScheduleSpec:
    if not isinstance(item, dict):
        raise ScheduleError(f"{path}: schedules[{index}] must be a mapping")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ScheduleError(f"{path}: schedules[{index}] needs a name")
    where = f"{path}: schedule {name!r}"
    unknown = sorted(set(item) - _SCHEDULE_KEYS)
    if unknown:
        raise ScheduleError(
            f"{where}: unknown field {unknown[0]!r}; fields: {', '.join(sorted(_SCHEDULE_KEYS))}"
        )
    for key in ("pipeline", "cron"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise ScheduleError(f"{where}: {key} is required (a string)")
    experiment = item.get("experiment", default_experiment)
    if not isinstance(experiment, str) or not experiment.strip():
        raise ScheduleError(
            f"{where}: no experiment; set experiment at the top of the file or in the schedule"
        )
    version = item.get("version")
    if version is not None and not isinstance(version, str):
        raise ScheduleError(f"{where}: version must be a version name (quote it) or 'latest'")
    concurrency = item.get("max_concurrency", 1)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 10:
        raise ScheduleError(f"{where}: max_concurrency must be a whole number from 1 to 10 (KFP's limit)")
    catchup = item.get("catchup", False)
    if not isinstance(catchup, bool):
        raise ScheduleError(f"{where}: catchup must be true or false")
    params = item.get("params") or {}
    if not isinstance(params, dict):
        raise ScheduleError(f"{where}: params must be a mapping of parameter name to value")
    return ScheduleSpec(
        name=name,
        pipeline=item["pipeline"],
        version=None if version in (None, "latest") else version,
        cron=item["cron"],
        kfp_cron=kfp_cron(item["cron"], name),
        experiment=experiment,
        max_concurrency=concurrency,
        catchup=catchup,
        params={str(k): v for k, v in params.items()},
    )
