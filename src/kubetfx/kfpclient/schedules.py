"""Make a KFP server's recurring runs match a schedule file, and pause, resume, delete them.

Recurring runs have no update call in KFP, and deleting one deletes the Argo workflows it
started, which stops its runs in flight. So :func:`apply_plan` never deletes: a changed
schedule gets a new recurring run (same display name, new spec hash), created in the mode
(enabled or paused) of the one it replaces, and only then is the old one disabled.
Disabling stops new triggers only; runs already started by the old recurring run go on to
the end, still owned by it. The old one stays on the server, disabled ("superseded"),
until ``kubetfx schedule delete NAME --superseded-only --yes`` removes it once nothing of
it is in flight. kubetfx knows its own recurring runs by a marker with the spec hash in
their description.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from kubetfx.kfpclient.connection import Server
from kubetfx.kfpclient.cron import ScheduleError
from kubetfx.kfpclient.schedule_file import ScheduleSpec
from kubetfx.kfpclient.versions import VersionCheck, check_versions
from kubetfx.pipeline_file import (
    declared_parameters,
    pipeline_spec,
    platform_floor,
    platform_spec,
    typed_parameters,
)

MARKER = "kubetfx schedule spec="
_MARKER_RE = re.compile(re.escape(MARKER) + r"([0-9a-f]{16})")


@dataclass
class Managed:
    """A kubetfx-managed recurring run found on the server."""

    id: str
    name: str
    spec_hash: str
    enabled: bool
    created_at: Any
    cron: str | None
    max_concurrency: int | None
    catchup: bool
    params: dict[str, Any]
    pipeline_id: str | None
    version_id: str | None
    experiment_id: str | None

    @classmethod
    def from_api(cls, run: Any) -> Managed | None:
        match = _MARKER_RE.search(run.description or "")
        if not match:
            return None
        trigger = run.trigger
        cron = trigger.cron_schedule.cron if trigger and trigger.cron_schedule else None
        reference = run.pipeline_version_reference
        mode = (run.mode or "").upper()
        status = (run.status or "").upper()
        return cls(
            id=run.recurring_run_id,
            name=run.display_name,
            spec_hash=match[1],
            enabled=mode == "ENABLE" or (not mode and status == "ENABLED"),
            created_at=run.created_at,
            cron=cron,
            max_concurrency=int(run.max_concurrency) if run.max_concurrency not in (None, "") else None,
            catchup=not run.no_catchup,
            params=dict((run.runtime_config.parameters or {}) if run.runtime_config else {}),
            pipeline_id=reference.pipeline_id if reference else None,
            version_id=(reference.pipeline_version_id if reference else None) or run.pipeline_version_id,
            experiment_id=run.experiment_id,
        )


@dataclass
class Desired:
    """A schedule resolved against the server: ids, typed parameters, spec hash."""

    spec: ScheduleSpec
    pipeline_id: str
    version_id: str
    version_name: str
    experiment_id: str | None  # None: the experiment will be created
    params: dict[str, Any]

    @property
    def spec_hash(self) -> str:
        """sha256 (16 hex) of everything that defines the recurring run."""
        canonical = {
            "experiment": self.spec.experiment,
            "pipeline_id": self.pipeline_id,
            "version_id": self.version_id,
            "cron": self.spec.kfp_cron,
            "max_concurrency": self.spec.max_concurrency,
            "catchup": self.spec.catchup,
            "params": self.params,
        }
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def changes_from(self, current: Managed) -> list[str]:
        """What differs from the recurring run on the server, in words."""
        pairs = [
            ("cron", current.cron, self.spec.kfp_cron),
            ("max_concurrency", current.max_concurrency, self.spec.max_concurrency),
            ("catchup", current.catchup, self.spec.catchup),
            ("params", current.params, self.params),
            ("pipeline version", current.version_id, self.version_id),
        ]
        if self.experiment_id is None or current.experiment_id != self.experiment_id:
            pairs.append(
                ("experiment", current.experiment_id, self.experiment_id or f"{self.spec.experiment} (new)")
            )
        changed = [
            f"{what} {old!r} -> {new!r}" for what, old, new in pairs if old != new and what != "params"
        ]
        for key in sorted(set(current.params) | set(self.params)):
            old, new = current.params.get(key, "(unset)"), self.params.get(key, "(unset)")
            if old != new:
                changed.append(f"param {key} {old!r} -> {new!r}")
        return changed or ["spec hash differs"]


@dataclass
class Step:
    """What apply does for one schedule."""

    name: str
    action: str  # "create" | "unchanged" | "replace"
    desired: Desired
    current: Managed | None = None
    superseded_enabled: list[Managed] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """Steps for every schedule in the file, plus managed schedules the file no longer names."""

    steps: list[Step]
    not_in_file: list[Managed]
    new_experiments: list[str]


def managed_by_name(server: Server) -> tuple[dict[str, list[Managed]], dict[str, list[str]]]:
    """kubetfx-managed recurring runs grouped by name (oldest first), and unmanaged ids by name."""
    managed: dict[str, list[Managed]] = {}
    unmanaged: dict[str, list[str]] = {}
    for run in server.recurring_runs():
        found = Managed.from_api(run)
        if found is None:
            unmanaged.setdefault(run.display_name, []).append(run.recurring_run_id)
        else:
            managed.setdefault(found.name, []).append(found)
    for runs in managed.values():
        runs.sort(key=lambda m: (_timestamp(m.created_at), m.enabled))
    return managed, unmanaged


def _timestamp(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def plan_schedules(server: Server, specs: list[ScheduleSpec]) -> tuple[Plan, list[VersionCheck]]:
    """Compare the schedule file with the server; reads only (experiments are not created here)."""
    managed, unmanaged = managed_by_name(server)
    experiments: dict[str, str | None] = {}
    checks: list[VersionCheck] = []
    steps: list[Step] = []
    for spec in specs:
        if spec.experiment not in experiments:
            exp = server.find_experiment(spec.experiment)
            experiments[spec.experiment] = exp.experiment_id if exp else None
        desired, check = _resolve(server, spec, experiments[spec.experiment])
        if check is not None:
            checks.append(check)
        runs = managed.get(spec.name, [])
        current = runs[-1] if runs else None
        step = Step(name=spec.name, action="create", desired=desired, current=current)
        step.superseded_enabled = [m for m in runs[:-1] if m.enabled]
        if current is not None:
            if current.spec_hash == desired.spec_hash:
                step.action = "unchanged"
            else:
                step.action = "replace"
                step.changes = desired.changes_from(current)
        if unmanaged.get(spec.name):
            step.notes.append(
                "a recurring run not managed by kubetfx has the same name "
                f"({', '.join(unmanaged[spec.name])}); left alone"
            )
        steps.append(step)
    named = {s.name for s in specs}
    not_in_file = [runs[-1] for name, runs in sorted(managed.items()) if name not in named]
    new_experiments = sorted(name for name, exp_id in experiments.items() if exp_id is None)
    return Plan(steps=steps, not_in_file=not_in_file, new_experiments=new_experiments), checks


def _resolve(
    server: Server, spec: ScheduleSpec, experiment_id: str | None
) -> tuple[Desired, VersionCheck | None]:
    where = f"schedule {spec.name!r}"
    pipeline = server.find_pipeline(spec.pipeline, server.namespace)
    if pipeline is None and server.namespace:
        pipeline = server.find_pipeline(spec.pipeline, None)  # a shared pipeline
    if pipeline is None:
        raise ScheduleError(
            f"{where}: pipeline {spec.pipeline!r} is not on KFP at {server.connection.label}; upload it "
            "first with `kubetfx submit PIPELINE.yaml --no-run`"
        )
    version = server.find_version(pipeline.pipeline_id, spec.version)
    if version is None:
        raise ScheduleError(
            f"{where}: pipeline {spec.pipeline!r} has no version {spec.version or '(none at all)'!r}; "
            "upload it with `kubetfx submit PIPELINE.yaml --no-run --version-name NAME`"
        )
    check = None
    params = dict(spec.params)
    compiled = pipeline_spec(version.pipeline_spec)
    if compiled:
        params = typed_parameters(
            spec.params,
            declared_parameters(compiled),
            spec.pipeline,
            where=f"{where}: ",
            how="set it under the schedule's params",
        )
        # A whole number written for a double parameter stays as written: KFP stores both
        # as a double, and the spec hash of schedules applied before must not change.
        params = {
            k: spec.params[k] if isinstance(v, float) and type(spec.params[k]) is int else v
            for k, v in params.items()
        }
        check = check_versions(
            compiled.get("sdkVersion"),
            server.server_version,
            f"pipeline {spec.pipeline!r} version {version.display_name!r}",
            floor=platform_floor(platform_spec(version.pipeline_spec)),
        )
    desired = Desired(
        spec=spec,
        pipeline_id=pipeline.pipeline_id,
        version_id=version.pipeline_version_id,
        version_name=version.display_name,
        experiment_id=experiment_id,
        params=params,
    )
    return desired, check


def describe(step: Step) -> str:
    """One line (or a few) saying what apply does, or did, for a step."""
    d = step.desired
    what = (
        f"cron {d.spec.kfp_cron!r}, pipeline {d.spec.pipeline!r} version {d.version_name!r}, "
        f"max_concurrency {d.spec.max_concurrency}, catchup {'on' if d.spec.catchup else 'off'}"
    )
    if step.action == "create":
        text = f"create    {step.name}: {what}"
    elif step.action == "unchanged":
        text = f"unchanged {step.name}: {what}"
    else:
        assert step.current is not None
        text = (
            f"replace   {step.name}: {'; '.join(step.changes)}. A new recurring run is created "
            f"({'enabled' if step.current.enabled else 'paused, as the old one is'}), then the old one "
            f"{step.current.id} is {'disabled' if step.current.enabled else 'left paused'}, not deleted: "
            "its runs in flight finish"
        )
    for old in step.superseded_enabled:
        text += f"\n          {step.name}: disable superseded recurring run {old.id} (left enabled earlier)"
    for note in step.notes:
        text += f"\n          {step.name}: note: {note}"
    return text


def apply_plan(server: Server, plan: Plan, service_account: str | None = None) -> list[str]:
    """Make the server match the plan; returns what was done, one line per action.

    For a changed schedule: create the new recurring run first (so a failure leaves the old
    one running), then disable the old one. Disabling stops future triggers only: KFP keeps
    the old recurring run's workflows, so runs it already started finish. Nothing is deleted.
    """
    done: list[str] = []
    experiment_ids: dict[str, str] = {}
    for step in plan.steps:
        d = step.desired
        if step.action in ("create", "replace"):
            name = d.spec.experiment
            if d.experiment_id is None and name not in experiment_ids:
                experiment_ids[name] = server.ensure_experiment(name).experiment_id
            experiment_id = d.experiment_id or experiment_ids[name]
            enabled = step.current.enabled if step.current else True
            with server.call(f"creating recurring run {step.name!r}"):
                created = server.client.create_recurring_run(
                    experiment_id=experiment_id,
                    job_name=step.name,
                    description=f"{MARKER}{d.spec_hash}; managed by `kubetfx schedule apply`, "
                    "edit the schedule file rather than this recurring run",
                    cron_expression=d.spec.kfp_cron,
                    max_concurrency=d.spec.max_concurrency,
                    no_catchup=not d.spec.catchup,
                    params=d.params,
                    pipeline_id=d.pipeline_id,
                    version_id=d.version_id,
                    enabled=enabled,
                    service_account=service_account,
                )
            state = "enabled" if enabled else "paused"
            done.append(f"{step.name}: created recurring run {created.recurring_run_id} ({state})")
        if step.action == "replace" and step.current is not None:
            if step.current.enabled:
                with server.call(f"disabling recurring run {step.current.id}"):
                    server.client.disable_recurring_run(step.current.id)
            verb = "disabled" if step.current.enabled else "left paused"
            done.append(
                f"{step.name}: {verb} the old recurring run {step.current.id} (kept; its runs in flight "
                f"finish; remove it later with `kubetfx schedule delete {step.name} --superseded-only --yes`)"
            )
        for old in step.superseded_enabled:
            with server.call(f"disabling recurring run {old.id}"):
                server.client.disable_recurring_run(old.id)
            done.append(f"{step.name}: disabled superseded recurring run {old.id}")
        if step.action == "unchanged" and not step.superseded_enabled:
            done.append(f"{step.name}: unchanged")
    return done


def find_managed(server: Server, name: str) -> list[Managed]:
    """All kubetfx-managed recurring runs with this name, oldest first; an error if none."""
    managed, _ = managed_by_name(server)
    runs = managed.get(name)
    if not runs:
        known = ", ".join(sorted(managed)) or "none"
        raise ScheduleError(
            f"no kubetfx-managed schedule {name!r} on KFP at {server.connection.label}"
            f"{f' (namespace {server.namespace})' if server.namespace else ''}; managed schedules: {known}"
        )
    return runs


def set_enabled(server: Server, name: str, enabled: bool) -> str:
    """Pause or resume a schedule's current recurring run; returns what happened."""
    current = find_managed(server, name)[-1]
    verb = "resumed" if enabled else "paused"
    if current.enabled == enabled:
        return f"{name}: already {verb} (recurring run {current.id})"
    action = server.client.enable_recurring_run if enabled else server.client.disable_recurring_run
    with server.call(f"{'enabling' if enabled else 'disabling'} recurring run {current.id}"):
        action(current.id)
    return f"{name}: {verb} (recurring run {current.id})"


def delete_targets(
    server: Server, name: str, superseded_only: bool
) -> tuple[list[Managed], list[Any], list[Managed]]:
    """What ``schedule delete`` would remove: (recurring runs, their runs in flight, kept ones).

    With ``superseded_only``, an old recurring run that still has runs in flight is kept
    (third item) rather than deleted: deleting it would stop them.
    """
    runs = find_managed(server, name)
    candidates = runs[:-1] if superseded_only else runs
    if not candidates:
        return [], [], []
    ids = {m.id for m in candidates}
    in_flight = server.runs_in_flight(ids, {m.experiment_id for m in candidates if m.experiment_id})
    if not superseded_only:
        return candidates, in_flight, []
    busy = {r.recurring_run_id for r in in_flight}
    return [m for m in candidates if m.id not in busy], [], [m for m in candidates if m.id in busy]


def delete(server: Server, targets: list[Managed]) -> list[str]:
    """Delete recurring runs (KFP then deletes their workflows, stopping runs in flight)."""
    done = []
    for target in targets:
        with server.call(f"deleting recurring run {target.id}"):
            server.client.delete_recurring_run(target.id)
        done.append(f"{target.name}: deleted recurring run {target.id}")
    return done


def current_schedules(server: Server) -> list[tuple[Managed, int]]:
    """Each managed schedule's current recurring run and how many superseded ones it has."""
    managed, _ = managed_by_name(server)
    return [(runs[-1], len(runs) - 1) for _, runs in sorted(managed.items())]
