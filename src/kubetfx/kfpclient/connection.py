"""Where the KFP API server is, and a connected ``kfp.Client`` with kubetfx's error handling.

Tokens never appear in output or errors: :class:`Connection` hides it from ``repr`` and
every message built from a server answer is scrubbed of it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kubetfx.errors import ConfigError, KubetfxError
from kubetfx.settings import redact

HOST_ENV = "KUBETFX_KFP_HOST"
KFP_HOST_ENV = "KF_PIPELINES_ENDPOINT"  # kfp.Client's own
NAMESPACE_ENV = "KUBETFX_KFP_NAMESPACE"
TOKEN_ENV = "KUBETFX_KFP_TOKEN"  # noqa: S105 - a variable name
UI_HOST_ENV = "KF_PIPELINES_UI_ENDPOINT"  # kfp.Client's own

IN_FLIGHT = ("PENDING", "RUNNING", "PAUSED", "CANCELING")
_PAGE = 100


class KfpServerError(KubetfxError):
    """The KFP API server cannot be reached, refuses us, or answers with an error."""


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
