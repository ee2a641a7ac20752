"""Submit runs to a Kubeflow Pipelines API server, and keep its recurring runs as code.

Everything goes through kfp's own client (``kfp.Client``) and the usual KFP authentication:
an explicit host, a bearer token, or kfp's own discovery (in-cluster service account,
then your kube config). kfp is imported inside the functions that talk to a server, so
importing this module (and ``kubetfx --help``) stays light.

Recurring runs have no update call in KFP, and deleting one deletes the Argo workflows it
started, which stops its runs in flight. So :func:`apply_plan` never deletes: a changed
schedule gets a new recurring run (same display name, new spec hash), created in the mode
(enabled or paused) of the one it replaces, and only then is the old one disabled.
Disabling stops new triggers only; runs already started by the old recurring run go on to
the end, still owned by it. The old one stays on the server, disabled ("superseded"),
until ``kubetfx schedule delete NAME --superseded-only --yes`` removes it once nothing of
it is in flight.

Tokens never appear in output or errors: :class:`Connection` hides it from ``repr`` and
every message built from a server answer is scrubbed of it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetfx.errors import ConfigError, KubetfxError, ParameterError, PipelineSpecError
from kubetfx.settings import redact

HOST_ENV = "KUBETFX_KFP_HOST"
KFP_HOST_ENV = "KF_PIPELINES_ENDPOINT"  # kfp.Client's own
NAMESPACE_ENV = "KUBETFX_KFP_NAMESPACE"
TOKEN_ENV = "KUBETFX_KFP_TOKEN"  # noqa: S105 - a variable name
UI_HOST_ENV = "KF_PIPELINES_UI_ENDPOINT"  # kfp.Client's own

MARKER = "kubetfx schedule spec="
_MARKER_RE = re.compile(re.escape(MARKER) + r"([0-9a-f]{16})")
IN_FLIGHT = ("PENDING", "RUNNING", "PAUSED", "CANCELING")
_PAGE = 100


class KfpServerError(KubetfxError):
    """The KFP API server cannot be reached, refuses us, or answers with an error."""


class ScheduleError(ConfigError):
    """A schedule file or a cron expression is invalid."""


# --------------------------------------------------------------------------- cron


_CRON_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 6),
)
_CRON_NAMES = {
    "month": {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    "day of week": {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
}
_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_EVERY = re.compile(r"^@every (\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
CRON_HELP = (
    "6 fields 'SECOND MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK' (KFP's format), or standard "
    "5-field cron 'MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK' (kubetfx adds second 0), or "
    "@hourly/@daily/@weekly/@monthly/@yearly/@every DURATION"
)


def kfp_cron(expression: str, schedule: str = "") -> str:
    """The cron expression KFP wants (6 fields, seconds first), validated before any request.

    KFP's scheduler parses cron with robfig/cron (v1): 6 fields, seconds first, ``*``, ``?``,
    lists, ranges, ``/step``, month and weekday names, day of week 0-6 (Sunday 0), and the
    ``@`` descriptors. A standard 5-field expression gets a leading ``0`` seconds field.
    (croniter is not used: it puts seconds last and accepts a 7 for Sunday, which KFP rejects.)

    Raises:
        ScheduleError: naming the schedule, the field and the offending value.
    """
    where = f"schedule {schedule!r}: " if schedule else ""
    text = " ".join(str(expression).split())
    if text.startswith("@"):
        if text in _DESCRIPTORS or _EVERY.match(text):
            return text
        raise ScheduleError(
            f"{where}cron {expression!r} is not a known descriptor; use {', '.join(_DESCRIPTORS)} "
            "or '@every 1h30m'"
        )
    parts = text.split(" ") if text else []
    if len(parts) == 5:
        parts = ["0", *parts]
    elif len(parts) != 6:
        raise ScheduleError(f"{where}cron {expression!r} has {len(parts)} fields; use {CRON_HELP}")
    for (name, low, high), value in zip(_CRON_FIELDS, parts):
        problem = _cron_field_problem(name, low, high, value)
        if problem:
            raise ScheduleError(f"{where}cron {expression!r}: {name} field {value!r} {problem}")
    return " ".join(parts)


def _cron_field_problem(name: str, low: int, high: int, value: str) -> str | None:
    names = _CRON_NAMES.get(name, {})

    def number(token: str) -> int | None:
        if token.isdigit():
            return int(token)
        return names.get(token.lower())

    for item in value.split(","):
        base, slash, step = item.partition("/")
        if slash and not (step.isdigit() and int(step) > 0):
            return f"has step {step!r}; a step is a whole number above 0"
        if base in ("*", "?"):
            continue
        ends = base.split("-", 1)
        numbers = [number(token) for token in ends]
        if not base or None in numbers:
            hint = f", or names ({'/'.join(list(names)[:3])}...)" if names else ""
            return f"is not a number{hint}, '*', a range A-B or a list A,B"
        if any(not low <= n <= high for n in numbers):  # type: ignore[operator]
            sunday = "; Sunday is 0" if name == "day of week" else ""
            return f"is out of range {low}-{high}{sunday}"
        if len(numbers) == 2 and numbers[0] > numbers[1]:  # type: ignore[operator]
            return "is a range that ends before it starts"
    return None


# --------------------------------------------------------------------------- versions


Release = tuple[int, ...]  # (major, minor, patch)


def _release(text: str | None) -> Release | None:
    match = re.match(r"^\s*(?:kfp-)?v?(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def _show(release: Release) -> str:
    return ".".join(map(str, release))


# Which KFP API server versions each kfp SDK release declares it works with: its
# requirement on kfp-server-api, the client package released with (and numbered like) the
# KFP backend. For the installed kfp the requirement is read from its own metadata; other
# SDK releases come from kfp's release notes and setup files (2.1.x: >=2.0.0,<2.1.0; 2.9.0: >=2.1.0,<2.4.0;
# 2.12.1: >=2.1.0,<2.5.0; 2.15 and later: >=SDK version,<3, the numbers being aligned).
_SDK_BACKENDS: tuple[tuple[Release, Release, Release, Release], ...] = (  # SDK from, to; KFP low, high
    ((2, 1, 0), (2, 2, 0), (2, 0, 0), (2, 1, 0)),
    ((2, 9, 0), (2, 12, 1), (2, 1, 0), (2, 4, 0)),
    ((2, 12, 1), (2, 14, 0), (2, 1, 0), (2, 5, 0)),
)


# The KFP backend releases that run kubetfx's compiled pipelines (docs/kubeflow.md has the
# matrix). The driver parses each task's Kubernetes platform config strictly; kfp-kubernetes
# 1.5 writes the ``*NameParameter`` fields, which the drivers of 2.4.x and earlier do not
# know, so every task fails there. tests/cluster/test_backend_versions.py checks the
# compiled pipelines against the protos of each release named here.
KUBETFX_BACKEND_FLOOR: Release = (2, 5, 0)
KUBETFX_BACKENDS_CHECKED: tuple[Release, ...] = ((2, 5, 0), (2, 14, 0), (2, 17, 0))
# Platform-config fields the KFP driver knows only from 2.5.0 on (kfp-kubernetes 1.5 writes them).
PLATFORM_FIELDS_SINCE_2_5 = (
    "configMapNameParameter",
    "secretNameParameter",
    "pvcNameParameter",
    "nodeSelectorJson",
    "tolerationJson",
)


def platform_floor(platform: Any) -> tuple[Release, str] | None:
    """(oldest KFP backend whose driver parses it, the field that needs it) for a compiled
    pipeline's Kubernetes platform spec; None when nothing in it needs a newer driver."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in PLATFORM_FIELDS_SINCE_2_5:
                    found.append(key)
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(platform)
    return (KUBETFX_BACKEND_FLOOR, found[0]) if found else None


@dataclass(frozen=True)
class VersionCheck:
    """The compiled pipeline's SDK against the server's version."""

    sdk: str | None
    server: str | None
    works_with: str | None  # e.g. ">=2.1.0,<2.5.0"
    compatible: bool | None  # None: cannot tell
    message: str
    blocking: bool = False  # the run cannot work at all: refuse it, --strict-version or not


def _installed_kfp_range() -> tuple[Release, Release, Release] | None:
    """(installed kfp version, low, high) from the installed kfp's kfp-server-api requirement."""
    from importlib import metadata

    try:
        installed = metadata.version("kfp")
        requires = metadata.requires("kfp") or []
    except metadata.PackageNotFoundError:
        return None
    for requirement in requires:
        if re.match(r"^kfp-server-api\b", requirement) and ";" not in requirement:
            low = re.search(r">=\s*([\d.]+)", requirement)
            high = re.search(r"<\s*([\d.]+)", requirement)
            release, first, end = _release(installed), _release(low and low[1]), _release(high and high[1])
            if release and first and end:
                return release, first, end
    return None


def backend_range(sdk_version: str) -> tuple[Release, Release] | None:
    """The KFP server versions [low, high) that the kfp SDK ``sdk_version`` works with, if known."""
    sdk = _release(sdk_version)
    if sdk is None:
        return None
    installed = _installed_kfp_range()
    if installed and installed[0][:2] == sdk[:2]:
        return installed[1], installed[2]
    for first, end, low, high in _SDK_BACKENDS:
        if first <= sdk < end:
            return low, high
    if sdk >= (2, 15, 0):
        return (sdk[0], sdk[1], 0), (sdk[0] + 1, 0, 0)
    return None


def check_versions(
    sdk_version: str | None,
    server_tag: str | None,
    pipeline: str,
    floor: tuple[Release, str] | None = None,
) -> VersionCheck:
    """Judge whether a pipeline compiled by kfp ``sdk_version`` suits a server reporting ``server_tag``.

    The server's version is the ``tag_name`` its healthz endpoint reports; the SDK's is the
    ``sdkVersion`` the compiled YAML records. With a ``floor`` (:func:`platform_floor`: the
    pipeline's platform spec needs a newer driver), a server below it is refused
    (``blocking``), and one from it on is judged by kubetfx's own checks
    (:data:`KUBETFX_BACKENDS_CHECKED`), not by the range the SDK's client declares.
    Otherwise compatible means the server version lies in the range of KFP API versions
    that SDK release declares it works with (see :func:`backend_range`); when either
    version or the range is unknown, the answer is "cannot tell", never a guess.
    """
    sdk = (sdk_version or "").removeprefix("kfp-") or None
    server = _release(server_tag)
    if floor is not None and server is not None:
        return _check_floor(sdk, server, pipeline, floor)
    if sdk is None:
        return VersionCheck(None, server_tag, None, None, f"{pipeline} records no sdkVersion; cannot check")
    if server is None:
        return VersionCheck(
            sdk,
            server_tag,
            None,
            None,
            f"the KFP server does not report its version (tag_name {server_tag!r}); cannot check it "
            f"against kfp {sdk}, which compiled {pipeline}",
        )
    known = backend_range(sdk)
    if known is None:
        return VersionCheck(
            sdk,
            _show(server),
            None,
            None,
            f"kubetfx does not know which KFP servers kfp {sdk} (which compiled {pipeline}) works with; "
            f"the server is KFP {_show(server)}: check the KFP release notes",
        )
    low, high = known
    works_with = f">={_show(low)},<{_show(high)}"
    if low <= server < high:
        return VersionCheck(
            sdk,
            _show(server),
            works_with,
            True,
            f"KFP server {_show(server)} suits kfp {sdk}, which compiled {pipeline} "
            f"(works with KFP {works_with})",
        )
    return VersionCheck(
        sdk,
        _show(server),
        works_with,
        False,
        f"KFP server {_show(server)} does not match kfp {sdk}, which compiled {pipeline}: that SDK "
        f"works with KFP {works_with}; the run may fail or lose features. Upgrade the server or "
        f"recompile with a kfp release made for KFP {_show(server)}",
    )


def _check_floor(sdk: str | None, server: Release, pipeline: str, floor: tuple[Release, str]) -> VersionCheck:
    low, field = floor
    newest = max(KUBETFX_BACKENDS_CHECKED)
    works_with = f">={_show(low)},<3.0.0"
    if server < low:
        return VersionCheck(
            sdk,
            _show(server),
            works_with,
            False,
            f"KFP server {_show(server)} cannot run {pipeline}: its driver rejects the platform field "
            f"{field!r} that kfp-kubernetes writes, so every task would fail; kubetfx pipelines need "
            f"KFP {_show(low)} or later (see docs/kubeflow.md)",
            blocking=True,
        )
    if server[0] != low[0]:
        return VersionCheck(
            sdk,
            _show(server),
            works_with,
            False,
            f"KFP server {_show(server)} is a major version kubetfx has not checked {pipeline} against "
            f"(checked: {', '.join(map(_show, KUBETFX_BACKENDS_CHECKED))})",
        )
    if server > newest:
        return VersionCheck(
            sdk,
            _show(server),
            works_with,
            None,
            f"KFP server {_show(server)} is newer than the newest release kubetfx checked {pipeline} "
            f"against (KFP {_show(newest)}); it should work, as KFP 2 keeps its pipeline format",
        )
    return VersionCheck(
        sdk,
        _show(server),
        works_with,
        True,
        f"KFP server {_show(server)} suits {pipeline} (kubetfx pipelines run on KFP {works_with}; "
        f"checked against {', '.join(map(_show, KUBETFX_BACKENDS_CHECKED))})",
    )


# --------------------------------------------------------------------------- pipeline files


@dataclass(frozen=True)
class PipelineFile:
    """What kubetfx needs from a compiled pipeline YAML."""

    path: Path
    name: str
    sdk_version: str | None
    parameters: dict[str, dict[str, Any]]
    digest: str  # sha256 of the file's bytes
    floor: tuple[Release, str] | None = None  # see platform_floor()

    @property
    def version_name(self) -> str:
        """Default pipeline version name: the first 12 hex digits of the file's SHA-256."""
        return f"sha256-{self.digest[:12]}"


def read_pipeline(path: str | Path) -> PipelineFile:
    """Read a compiled KFP v2 pipeline YAML (the file ``kubetfx compile`` writes)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise PipelineSpecError(f"{path}: no such pipeline file; compile one with `kubetfx compile`")
    raw = path.read_bytes()
    try:
        docs = list(yaml.safe_load_all(raw))
    except yaml.YAMLError as err:
        raise PipelineSpecError(f"{path}: not valid YAML ({getattr(err, 'problem', err)})") from None
    spec = _pipeline_spec(docs[0] if docs else None)
    platform = docs[1] if len(docs) > 1 else None
    if not spec:
        raise PipelineSpecError(
            f"{path}: not a compiled KFP v2 pipeline (no pipelineInfo/root); compile it with kfp 2"
        )
    return PipelineFile(
        path=path,
        name=str(spec["pipelineInfo"].get("name") or path.stem),
        sdk_version=spec.get("sdkVersion"),
        parameters=_declared_parameters(spec),
        digest=hashlib.sha256(raw).hexdigest(),
        floor=platform_floor(platform),
    )


def _pipeline_spec(doc: Any) -> dict[str, Any] | None:
    """The PipelineSpec in a YAML document or a server's pipeline_spec (maybe wrapped with platform_spec)."""
    if isinstance(doc, dict) and isinstance(doc.get("pipeline_spec"), dict):
        doc = doc["pipeline_spec"]
    if isinstance(doc, dict) and isinstance(doc.get("pipelineInfo"), dict) and "root" in doc:
        return doc
    return None


def _platform_spec(doc: Any) -> Any:
    """The platform spec a server's pipeline_spec carries next to the PipelineSpec, if any."""
    return doc.get("platform_spec") if isinstance(doc, dict) else None


def _declared_parameters(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    params = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    return {str(k): dict(v or {}) for k, v in params.items()}


def coerce_params(given: dict[str, Any], declared: dict[str, dict[str, Any]], where: str) -> dict[str, Any]:
    """Check run parameters against the pipeline's inputs and give each its declared type.

    Strings (from ``--param k=v``) are converted: integers, doubles, ``true``/``false``, and
    JSON for list and struct parameters. Typed values (from a schedule file) must already fit.
    """
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name not in declared:
            raise ParameterError(
                f"{where}: the pipeline has no parameter {name!r}; "
                f"it has {', '.join(sorted(declared)) or 'none'}"
            )
        kind = declared[name].get("parameterType", "STRING")
        out[name] = _coerce(name, value, kind, where)
    missing = sorted(
        n
        for n, d in declared.items()
        if n not in given and "defaultValue" not in d and not d.get("isOptional")
    )
    if missing:
        raise ParameterError(f"{where}: missing parameter {missing[0]!r} (it has no default); pass it")
    return out


def _coerce(name: str, value: Any, kind: str, where: str) -> Any:
    def bad(expected: str) -> ParameterError:
        return ParameterError(f"{where}: parameter {name!r} is {expected} ({kind}), got {value!r}")

    if kind == "STRING":
        if isinstance(value, str):
            return value
        raise bad("a string; quote the value")
    if isinstance(value, str):
        try:
            if kind == "NUMBER_INTEGER":
                return int(value)
            if kind == "NUMBER_DOUBLE":
                return float(value)
            if kind == "BOOLEAN":
                if value.lower() in ("true", "false"):
                    return value.lower() == "true"
                raise ValueError(value)
            if kind in ("LIST", "STRUCT"):
                value = json.loads(value)
        except ValueError:
            raise bad({"LIST": "JSON list", "STRUCT": "JSON object"}.get(kind, kind.lower())) from None
    expected = {
        "NUMBER_INTEGER": (int,),
        "NUMBER_DOUBLE": (int, float),
        "BOOLEAN": (bool,),
        "LIST": (list,),
        "STRUCT": (dict,),
    }.get(kind)
    if expected is None:
        return value
    if isinstance(value, bool) and bool not in expected:
        raise bad(kind.lower())
    if not isinstance(value, expected):
        raise bad(kind.lower())
    return value


# --------------------------------------------------------------------------- connection


@dataclass(frozen=True)
class Connection:
    """How to reach the KFP API. ``repr`` never shows the token."""

    host: str | None = None
    namespace: str | None = None
    token: str | None = field(default=None, repr=False)
    kube_context: str | None = None
    ui_host: str | None = None

    @property
    def label(self) -> str:
        """The host as shown to users (no password, scheme as kfp would add it)."""
        if not self.host:
            return "the KFP API found through your kube config"
        host = self.host if self.host.startswith("http") else f"https://{self.host}"
        return redact(host.rstrip("/"))


class Server:
    """A connected ``kfp.Client`` with kubetfx's error handling around every call."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        if connection.token and not connection.host:
            raise ConfigError(
                f"a token needs a host: pass --host (or set {HOST_ENV}) with the token in {TOKEN_ENV}"
            )
        self.client = self._make_client()
        health = self._healthz()
        self.server_version: str | None = health.get("tag_name")
        self.multi_user = bool(health.get("multi_user"))
        self.namespace = connection.namespace or self.client.get_user_namespace() or None
        if self.multi_user and not self.namespace:
            raise ConfigError(
                f"KFP at {connection.label} is multi-user: pass --namespace with your profile "
                f"namespace (or set {NAMESPACE_ENV})"
            )

    # -- plumbing

    def _scrub(self, text: str) -> str:
        token = self.connection.token
        if token:
            text = text.replace(token, "***")
        return redact(text)

    @contextlib.contextmanager
    def call(self, action: str) -> Iterator[None]:
        """Turn kfp/urllib3 failures while doing ``action`` into one-line kubetfx errors."""
        import kfp_server_api
        import urllib3

        label = self.connection.label
        try:
            # kfp prints links and notices on stdout; kubetfx prints its own summary.
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except kfp_server_api.ApiException as err:
            raise KfpServerError(self._scrub(self._api_message(err, action))) from None
        except urllib3.exceptions.HTTPError as err:
            reason = getattr(err, "reason", None) or err
            detail = re.search(r"\[Errno -?\d+\][^'\")]*", str(reason))
            why = detail[0].strip() if detail else type(reason).__name__
            raise KfpServerError(
                self._scrub(
                    f"cannot reach the KFP API at {label} ({why}) while {action}: check --host "
                    f"(or {HOST_ENV} / {KFP_HOST_ENV}) and that the API answers there, e.g. "
                    "`kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80` and --host http://localhost:8080"
                )
            ) from None

    def _api_message(self, err: Any, action: str) -> str:
        label = self.connection.label
        status = getattr(err, "status", None)
        detail = ""
        body = getattr(err, "body", None)
        if body:
            try:
                parsed = json.loads(body)
                detail = str(parsed.get("message") or parsed.get("error") or "")
            except (ValueError, AttributeError):
                detail = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        detail = " ".join(detail.split())[:300]
        if status == 0:
            return f"TLS error talking to KFP at {label} while {action}: {err.reason}"
        if status == 401:
            return (
                f"KFP at {label} rejected the credentials (401 Unauthorized) while {action}: set a valid "
                f"token in {TOKEN_ENV} (or --existing-token), or renew your kube config login"
            )
        if status == 403:
            where = f" in namespace {self.namespace!r}" if getattr(self, "namespace", None) else ""
            return (
                f"KFP at {label} refused {action}{where} (403 Forbidden): check that the token is valid and "
                "that its user is a contributor of the profile namespace (--namespace)"
            )
        if status == 404 and "healthz" in action:
            return (
                f"no KFP API at {label} (404 on /apis/v2beta1/healthz): --host must be the KFP API or "
                "UI address, e.g. http://localhost:8080 for a port-forwarded ml-pipeline-ui"
            )
        answered = f"KFP at {label} answered {status} {getattr(err, 'reason', '')} while {action}"
        return f"{answered}: {detail}" if detail else answered

    def _make_client(self) -> Any:
        import kfp

        class _Client(kfp.Client):
            """kfp.Client whose health check fails at once (kfp retries 5 times, 5 s apart)."""

            def get_kfp_healthz(self, sleep_duration: int = 5) -> Any:
                return self._healthz_api.healthz_service_get_healthz()

        conn = self.connection
        printed = io.StringIO()
        no_host = ConfigError(
            f"no KFP host: pass --host (or set {HOST_ENV} or {KFP_HOST_ENV}), "
            "or point kubectl at the cluster (kube config)"
        )
        try:
            with self.call("connecting"), contextlib.redirect_stdout(printed):
                client = _Client(
                    host=conn.host,
                    existing_token=conn.token,
                    kube_context=conn.kube_context,
                    ui_host=conn.ui_host,
                )
        except KfpServerError:
            if not conn.host and "Failed to load kube config" in printed.getvalue():
                raise no_host from None
            raise
        if not conn.host and "Failed to load kube config" in printed.getvalue():
            raise no_host
        return client

    def _healthz(self) -> dict[str, Any]:
        with self.call("checking the server (healthz)"):
            # The raw answer: the server also reports tag_name (its version), which the
            # generated V2beta1GetHealthzResponse model drops.
            response = self.client.healthzs.healthz_service_get_healthz(_preload_content=False)
        try:
            return dict(json.loads(response.data))
        except (ValueError, TypeError):
            raise KfpServerError(
                f"{self.connection.label} answered the health check with something other than JSON: is "
                "--host the KFP API (behind a login page, pass a token)?"
            ) from None

    def url(self, kind: str, object_id: str) -> str:
        """A link into the KFP UI (kfp's own prefix: --ui-host, KF_PIPELINES_UI_ENDPOINT or the host)."""
        return f"{self.client._get_url_prefix()}/#/{kind}/details/{object_id}"

    # -- lookups

    def _pages(self, list_call: Any, items: str, action: str, **kwargs: Any) -> list[Any]:
        found: list[Any] = []
        token = ""
        while True:
            with self.call(action):
                page = list_call(page_token=token, page_size=_PAGE, **kwargs)
            found.extend(getattr(page, items) or [])
            token = page.next_page_token or ""
            if not token:
                return found

    def find_pipeline(self, name: str, namespace: str | None) -> Any | None:
        """The pipeline with this display name, or None."""
        with self.call(f"looking up pipeline {name!r}"):
            page = self.client.list_pipelines(filter=_name_filter(name), namespace=namespace, page_size=2)
        return (page.pipelines or [None])[0]

    def find_version(self, pipeline_id: str, name: str | None) -> Any | None:
        """A version of the pipeline by display name, or its newest when ``name`` is None."""
        with self.call(f"looking up versions of pipeline {pipeline_id}"):
            page = self.client.list_pipeline_versions(
                pipeline_id=pipeline_id,
                filter=_name_filter(name) if name else None,
                sort_by="created_at desc",
                page_size=1,
            )
        return (page.pipeline_versions or [None])[0]

    def find_experiment(self, name: str) -> Any | None:
        with self.call(f"looking up experiment {name!r}"):
            page = self.client.list_experiments(
                filter=_name_filter(name), namespace=self.namespace, page_size=2
            )
        return (page.experiments or [None])[0]

    def ensure_experiment(self, name: str) -> Any:
        with self.call(f"creating experiment {name!r}"):
            return self.client.create_experiment(name=name, namespace=self.namespace)

    def recurring_runs(self) -> list[Any]:
        return self._pages(
            self.client.list_recurring_runs,
            "recurring_runs",
            "listing recurring runs",
            namespace=self.namespace,
        )

    def runs_in_flight(self, recurring_run_ids: set[str], experiment_ids: set[str]) -> list[Any]:
        """Runs started by these recurring runs that have not finished."""
        runs: list[Any] = []
        for experiment_id in sorted(experiment_ids):
            runs.extend(
                self._pages(
                    self.client.list_runs, "runs", "listing runs in flight", experiment_id=experiment_id
                )
            )
        return [r for r in runs if r.recurring_run_id in recurring_run_ids and (r.state or "") in IN_FLIGHT]


def _name_filter(name: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "string_value": name}]})


# --------------------------------------------------------------------------- submit


@dataclass(frozen=True)
class Submitted:
    """What ``kubetfx submit`` did."""

    pipeline_id: str
    pipeline_name: str
    pipeline_action: str  # "uploaded" | "existing"
    version_id: str
    version_name: str
    version_action: str  # "uploaded with the pipeline" | "uploaded" | "existing (same content)"
    experiment_id: str | None = None
    experiment_name: str | None = None
    run_id: str | None = None
    run_name: str | None = None
    run_url: str | None = None


def submit(
    server: Server,
    pipeline: PipelineFile,
    *,
    experiment: str | None,
    params: dict[str, Any],
    pipeline_name: str | None = None,
    version_name: str | None = None,
    run_name: str | None = None,
    run: bool = True,
    service_account: str | None = None,
) -> Submitted:
    """Upload the pipeline (or a new version of it), then start a run in ``experiment``.

    A missing pipeline is uploaded (KFP names its first version after the pipeline). An
    existing one gets a new version named ``version_name`` or, by default, after the file's
    content hash (``sha256-<12 hex>``); a version of that hash already there is reused, not
    uploaded again. An explicit ``version_name`` that exists already is an error.
    """
    name = pipeline_name or pipeline.name
    namespace = server.namespace
    found = server.find_pipeline(name, namespace)
    path = str(pipeline.path)
    if found is None:
        with server.call(f"uploading pipeline {name!r}"):
            uploaded = server.client.upload_pipeline(path, pipeline_name=name, namespace=namespace)
        pipeline_id, pipeline_action = uploaded.pipeline_id, "uploaded"
        version = server.find_version(pipeline_id, None)
        if version is None:
            raise KfpServerError(f"KFP uploaded pipeline {name!r} ({pipeline_id}) but lists no version of it")
        version_action = "uploaded with the pipeline"
    else:
        pipeline_id, pipeline_action = found.pipeline_id, "existing"
        wanted = version_name or pipeline.version_name
        version = server.find_version(pipeline_id, wanted)
        if version is not None and version_name:
            raise KfpServerError(
                f"pipeline {name!r} already has a version {version_name!r}; pick another --version-name "
                "or leave it out (kubetfx then names versions by content hash)"
            )
        if version is not None:
            version_action = "existing (same content)"
        else:
            with server.call(f"uploading version {wanted!r} of pipeline {name!r}"):
                version = server.client.upload_pipeline_version(
                    path, pipeline_version_name=wanted, pipeline_id=pipeline_id
                )
            version_action = "uploaded"
    result = Submitted(
        pipeline_id=pipeline_id,
        pipeline_name=name,
        pipeline_action=pipeline_action,
        version_id=version.pipeline_version_id,
        version_name=version.display_name,
        version_action=version_action,
    )
    if not run:
        return result
    if not experiment:
        raise ConfigError(
            "pass --experiment NAME (created if missing) for the run, or --no-run to only upload"
        )
    exp = server.ensure_experiment(experiment)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    job_name = run_name or f"{name} {version.display_name} {stamp}"
    with server.call(f"creating run {job_name!r}"):
        created = server.client.run_pipeline(
            experiment_id=exp.experiment_id,
            job_name=job_name,
            params=params,
            pipeline_id=pipeline_id,
            version_id=version.pipeline_version_id,
            service_account=service_account,
        )
    return dataclasses.replace(
        result,
        experiment_id=exp.experiment_id,
        experiment_name=experiment,
        run_id=created.run_id,
        run_name=job_name,
        run_url=server.url("runs", created.run_id),
    )


# --------------------------------------------------------------------------- schedules

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
    compiled = _pipeline_spec(version.pipeline_spec)
    if compiled:
        params = coerce_params(spec.params, _declared_parameters(compiled), where)
        check = check_versions(
            compiled.get("sdkVersion"),
            server.server_version,
            f"pipeline {spec.pipeline!r} version {version.display_name!r}",
            floor=platform_floor(_platform_spec(version.pipeline_spec)),
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


def resolve_connection(
    host: str | None,
    namespace: str | None,
    token: str | None,
    kube_context: str | None = None,
    ui_host: str | None = None,
) -> Connection:
    """Options first, then kubetfx's environment variables, then kfp's own (``KF_PIPELINES_ENDPOINT``)."""
    return Connection(
        host=host or os.environ.get(HOST_ENV) or os.environ.get(KFP_HOST_ENV) or None,
        namespace=namespace or os.environ.get(NAMESPACE_ENV) or None,
        token=token or os.environ.get(TOKEN_ENV) or None,
        kube_context=kube_context,
        ui_host=ui_host,
    )
