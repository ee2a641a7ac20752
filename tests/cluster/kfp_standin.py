"""A stand-in for the Kubeflow Pipelines REST API (v2beta1), for tests. It is not KFP.

It serves, on a loopback port, the endpoints that ``kfp.Client`` calls for kubetfx's
commands: healthz, pipeline upload and upload_version (multipart), pipelines and versions,
experiments, runs and recurring runs (create, list, get, enable, disable, delete). Every
JSON request body is checked against the ``kfp_server_api`` model it must be (unknown
fields, wrong types and enum values answer 400) and then deserialized into that model;
query parameters are checked against the generated client's parameter names. Every request
is recorded (method, path, query, body, Authorization header) for tests to inspect.

What it emulates of KFP's behaviour: unique names (pipelines and experiments per namespace,
versions per pipeline), multi-user mode (lists need a namespace), a bearer token (missing:
401, wrong: 403), 6-field cron and max_concurrency 1-10 for recurring runs, and the hazard
kubetfx works around: deleting a recurring run cancels its runs in flight (KFP deletes the
workflows it owns), while disabling one leaves them running. Nothing runs pipelines.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import json
import re
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import kfp_server_api
import yaml

V2 = "/apis/v2beta1"
LIST_QUERY = {"page_token", "page_size", "sort_by", "filter", "namespace"}
RESPONSES = {  # handler -> the kfp_server_api model of its answer (healthz: KFP sends more than its model)
    "_upload": "V2beta1Pipeline",
    "_upload_version": "V2beta1PipelineVersion",
    "_list_pipelines": "V2beta1ListPipelinesResponse",
    "_list_versions": "V2beta1ListPipelineVersionsResponse",
    "_get_version": "V2beta1PipelineVersion",
    "_list_experiments": "V2beta1ListExperimentsResponse",
    "_create_experiment": "V2beta1Experiment",
    "_list_runs": "V2beta1ListRunsResponse",
    "_create_run": "V2beta1Run",
    "_list_recurring": "V2beta1ListRecurringRunsResponse",
    "_create_recurring": "V2beta1RecurringRun",
    "_get_recurring": "V2beta1RecurringRun",
}


class BadRequest(Exception):
    """Answered as HTTP ``status`` with a grpc-gateway style error body."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    """One recorded request."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None


def check_model(data: Any, type_name: str, where: str = "body") -> None:
    """Raise BadRequest unless ``data`` (parsed JSON) fits the kfp_server_api type exactly."""
    if type_name.startswith("list["):
        if not isinstance(data, list):
            raise BadRequest(f"{where}: expected a list")
        for i, item in enumerate(data):
            check_model(item, type_name[5:-1], f"{where}[{i}]")
        return
    if type_name.startswith("dict("):
        if not isinstance(data, dict):
            raise BadRequest(f"{where}: expected an object")
        for key, value in data.items():
            check_model(value, type_name[5:-1].split(", ", 1)[1], f"{where}.{key}")
        return
    primitive = {"str": (str, int), "int": (int,), "float": (int, float), "bool": (bool,)}
    if type_name == "object":
        return
    if type_name in primitive:
        # int64 fields are 'str' in the generated client, and JSON may carry them as numbers.
        ok = isinstance(data, primitive[type_name]) and (type_name == "bool" or not isinstance(data, bool))
        if not ok:
            raise BadRequest(f"{where}: expected {type_name}, got {data!r}")
        return
    if type_name == "datetime":
        try:
            dt.datetime.fromisoformat(str(data).replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"{where}: not a timestamp: {data!r}") from None
        return
    klass = getattr(kfp_server_api.models, type_name)
    if hasattr(klass, "allowable_values"):
        if data not in klass.allowable_values:
            raise BadRequest(f"{where}: {data!r} is not one of {klass.allowable_values}")
        return
    if not isinstance(data, dict):
        raise BadRequest(f"{where}: expected a {type_name} object")
    json_to_attr = {json_key: attr for attr, json_key in klass.attribute_map.items()}
    for key, value in data.items():
        if key not in json_to_attr:
            raise BadRequest(f"{where}: unknown field {key!r} for {type_name}")
        if value is not None:
            check_model(value, klass.openapi_types[json_to_attr[key]], f"{where}.{key}")


def to_model(data: Any, type_name: str) -> Any:
    """Check, then deserialize with kfp_server_api's own deserializer."""
    check_model(data, type_name)
    return kfp_server_api.ApiClient().deserialize(SimpleNamespace(data=json.dumps(data)), type_name)


class KfpStandIn:
    """The stand-in server; use as a context manager (``with KfpStandIn() as kfp: kfp.url``)."""

    def __init__(
        self, *, version: str = "2.14.0", multi_user: bool = False, token: str | None = None
    ) -> None:
        self.version = version
        self.multi_user = multi_user
        self.token = token
        self.requests: list[Request] = []
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}
        self.experiments: dict[str, dict] = {}
        self.runs: dict[str, dict] = {}
        self.recurring_runs: dict[str, dict] = {}
        self._clock = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                standin._handle(self, "GET")

            def do_POST(self) -> None:
                standin._handle(self, "POST")

            def do_DELETE(self) -> None:
                standin._handle(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> KfpStandIn:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- for tests

    def calls(self, method: str | None = None, path: str = "") -> list[Request]:
        """Recorded requests, optionally only one method and paths matching a regex."""
        return [
            r for r in self.requests if (method is None or r.method == method) and re.search(path, r.path)
        ]

    def add_run(self, recurring_run_id: str, state: str = "RUNNING") -> dict:
        """Put a run that a recurring run started (an 'in-flight' run) on the server."""
        parent = self.recurring_runs[recurring_run_id]
        run = {
            "run_id": self._id(),
            "display_name": f"{parent['display_name']} triggered",
            "experiment_id": parent["experiment_id"],
            "recurring_run_id": recurring_run_id,
            "state": state,
            "created_at": self._now(),
        }
        self.runs[run["run_id"]] = run
        return run

    # -- plumbing

    def _id(self) -> str:
        return str(uuid.uuid4())

    def _now(self) -> str:
        self._clock += dt.timedelta(seconds=1)
        return self._clock.isoformat().replace("+00:00", "Z")

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        ctype = handler.headers.get("Content-Type", "")
        body: Any = None
        status, answer = 200, {}
        try:
            if raw and ctype.startswith("application/json"):
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise BadRequest("body is not JSON") from None
            elif raw and ctype.startswith("multipart/form-data"):
                body = self._multipart(ctype, raw)
            with self._lock:
                self.requests.append(
                    Request(method, split.path, query, body, handler.headers.get("Authorization"))
                )
                self._authorize(handler.headers.get("Authorization"))
                answer = self._route(method, split.path, query, body)
        except BadRequest as err:
            status, answer = err.status, {"error": str(err), "code": 3, "message": str(err), "details": []}
        except Exception as err:  # a stand-in bug: answer 500 rather than drop the connection
            status, answer = 500, {"error": repr(err), "code": 13, "message": repr(err), "details": []}
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _authorize(self, header: str | None) -> None:
        if self.token is None:
            return
        if not header:
            raise BadRequest("Unauthenticated: no bearer token", 401)
        if header != f"Bearer {self.token}":
            raise BadRequest("Forbidden: the token is not valid for this server", 403)

    def _multipart(self, ctype: str, raw: bytes) -> dict[str, Any]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + raw
        )
        parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        if set(parts) != {"uploadfile"}:
            raise BadRequest(f"multipart fields {sorted(parts)}; expected only 'uploadfile'")
        # A compiled pipeline is the IR, then optionally the platform spec (kfp-kubernetes).
        spec = next(iter(yaml.safe_load_all(parts["uploadfile"].get_payload(decode=True))), None)
        if not isinstance(spec, dict) or "pipelineInfo" not in spec or "root" not in spec:
            raise BadRequest("uploadfile is not a compiled KFP v2 pipeline")
        return {"uploadfile": spec}

    def _route(self, method: str, path: str, query: dict[str, str], body: Any) -> Any:
        routes = [
            ("GET", r"/healthz", set(), self._healthz),
            (
                "POST",
                r"/pipelines/upload",
                {"name", "description", "namespace", "display_name"},
                self._upload,
            ),
            (
                "POST",
                r"/pipelines/upload_version",
                {"name", "pipelineid", "description", "display_name"},
                self._upload_version,
            ),
            ("GET", r"/pipelines", LIST_QUERY, self._list_pipelines),
            ("GET", r"/pipelines/(?P<pid>[^/]+)/versions", LIST_QUERY - {"namespace"}, self._list_versions),
            ("GET", r"/pipelines/(?P<pid>[^/]+)/versions/(?P<vid>[^/]+)", set(), self._get_version),
            ("GET", r"/experiments", LIST_QUERY, self._list_experiments),
            ("POST", r"/experiments", set(), self._create_experiment),
            ("GET", r"/runs", LIST_QUERY | {"experiment_id"}, self._list_runs),
            ("POST", r"/runs", {"experiment_id"}, self._create_run),
            ("GET", r"/recurringruns", LIST_QUERY | {"experiment_id"}, self._list_recurring),
            ("POST", r"/recurringruns", set(), self._create_recurring),
            ("GET", r"/recurringruns/(?P<rid>[^/:]+)", set(), self._get_recurring),
            ("POST", r"/recurringruns/(?P<rid>[^/:]+):(?P<verb>enable|disable)", set(), self._set_mode),
            ("DELETE", r"/recurringruns/(?P<rid>[^/:]+)", set(), self._delete_recurring),
        ]
        for verb, pattern, allowed, func in routes:
            match = re.fullmatch(V2 + pattern, path)
            if verb == method and match:
                unknown = sorted(set(query) - allowed)
                if unknown:
                    raise BadRequest(f"unknown query parameter {unknown[0]!r} for {method} {path}")
                answer = func(query=query, body=body, **match.groupdict())
                try:  # the stand-in's own answers must fit the models kfp.Client reads them with
                    check_model(answer, RESPONSES.get(func.__name__, "object"), "stand-in response")
                except BadRequest as err:
                    raise AssertionError(f"stand-in bug: {err}") from None
                return answer
        raise BadRequest(f"the stand-in has no {method} {path}", 404)

    def _listing(self, items: list[dict], query: dict[str, str], key: str) -> dict:
        if query.get("filter"):
            for predicate in json.loads(query["filter"]).get("predicates", []):
                value = predicate.get("string_value", predicate.get("stringValue"))
                op = predicate.get("operation")
                if predicate.get("key") != "display_name" or op not in ("EQUALS", 1):
                    raise BadRequest(f"the stand-in filters only display_name EQUALS, got {predicate}")
                items = [i for i in items if i.get("display_name") == value]
        sort = query.get("sort_by", "")
        field_name = sort.split(" ")[0] or "created_at"
        items = sorted(items, key=lambda i: i.get(field_name) or "", reverse=sort.endswith(" desc"))
        start = int(query.get("page_token") or 0)
        size = int(query.get("page_size") or 10)
        page = items[start : start + size]
        more = start + size < len(items)
        return {key: page, "total_size": len(items), "next_page_token": str(start + size) if more else ""}

    def _namespaced(self, items: dict[str, dict], query: dict[str, str], what: str) -> list[dict]:
        namespace = query.get("namespace", "")
        if self.multi_user and not namespace and not query.get("experiment_id"):
            raise BadRequest(f"Invalid input error: in multi-user mode, listing {what} requires a namespace")
        if query.get("experiment_id"):
            return [i for i in items.values() if i.get("experiment_id") == query["experiment_id"]]
        return [i for i in items.values() if self._namespace_of(i) == namespace]

    def _namespace_of(self, item: dict) -> str:
        if "namespace" in item:
            return item["namespace"]
        return self.experiments.get(item.get("experiment_id"), {}).get("namespace", "")

    # -- endpoints

    def _healthz(self, **_: Any) -> dict:
        return {"commit_sha": "standin", "tag_name": self.version, "multi_user": self.multi_user}

    def _upload(self, query: dict[str, str], body: Any, **_: Any) -> dict:
        if not body:
            raise BadRequest("upload needs a multipart 'uploadfile'")
        name = query.get("name") or body["uploadfile"]["pipelineInfo"]["name"]
        namespace = query.get("namespace", "")
        if any(p["display_name"] == name and p["namespace"] == namespace for p in self.pipelines.values()):
            raise BadRequest(f"Already exist error: pipeline {name!r} exists", 409)
        pipeline = {"pipeline_id": self._id(), "display_name": name, "namespace": namespace}
        pipeline["created_at"] = self._now()
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        self._add_version(pipeline["pipeline_id"], name, body["uploadfile"])
        return pipeline

    def _upload_version(self, query: dict[str, str], body: Any, **_: Any) -> dict:
        pid = query.get("pipelineid", "")
        if pid not in self.pipelines or not body:
            raise BadRequest("upload_version needs an existing pipelineid and an 'uploadfile'")
        return self._add_version(pid, query.get("name") or "", body["uploadfile"])

    def _add_version(self, pid: str, name: str, spec: dict) -> dict:
        if not name or any(
            v["display_name"] == name and v["pipeline_id"] == pid for v in self.versions.values()
        ):
            raise BadRequest(
                f"Already exist error: version {name!r} of pipeline {pid} exists (or no name)", 409
            )
        version = {"pipeline_id": pid, "pipeline_version_id": self._id(), "display_name": name}
        version.update(created_at=self._now(), pipeline_spec=spec)
        self.versions[version["pipeline_version_id"]] = version
        return version

    def _list_pipelines(self, query: dict[str, str], **_: Any) -> dict:
        namespace = query.get("namespace", "")
        found = [p for p in self.pipelines.values() if p["namespace"] == namespace]
        return self._listing(found, query, "pipelines")

    def _list_versions(self, query: dict[str, str], pid: str, **_: Any) -> dict:
        found = [v for v in self.versions.values() if v["pipeline_id"] == pid]
        return self._listing(found, query, "pipeline_versions")

    def _get_version(self, pid: str, vid: str, **_: Any) -> dict:
        version = self.versions.get(vid)
        if not version or version["pipeline_id"] != pid:
            raise BadRequest(f"version {vid} of pipeline {pid} not found", 404)
        return version

    def _list_experiments(self, query: dict[str, str], **_: Any) -> dict:
        return self._listing(self._namespaced(self.experiments, query, "experiments"), query, "experiments")

    def _create_experiment(self, body: Any, **_: Any) -> dict:
        model = to_model(body, "V2beta1Experiment")
        if not model.display_name or (self.multi_user and not model.namespace):
            raise BadRequest("an experiment needs a display_name (and a namespace in multi-user mode)")
        namespace = model.namespace or ""
        if any(
            e["display_name"] == model.display_name and e["namespace"] == namespace
            for e in self.experiments.values()
        ):
            raise BadRequest(f"Already exist error: experiment {model.display_name!r}", 409)
        experiment = {"experiment_id": self._id(), "display_name": model.display_name, "namespace": namespace}
        experiment.update(created_at=self._now(), storage_state="AVAILABLE")
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def _checked_reference(self, model: Any) -> None:
        if model.experiment_id not in self.experiments:
            raise BadRequest(f"experiment {model.experiment_id!r} not found", 404)
        ref = model.pipeline_version_reference
        if not ref or ref.pipeline_version_id not in self.versions:
            raise BadRequest("pipeline_version_reference names no existing pipeline version")
        if self.versions[ref.pipeline_version_id]["pipeline_id"] != ref.pipeline_id:
            raise BadRequest("pipeline_version_reference: the version is not of that pipeline")

    def _list_runs(self, query: dict[str, str], **_: Any) -> dict:
        return self._listing(self._namespaced(self.runs, query, "runs"), query, "runs")

    def _create_run(self, body: Any, **_: Any) -> dict:
        model = to_model(body, "V2beta1Run")
        self._checked_reference(model)
        if not model.display_name:
            raise BadRequest("a run needs a display_name")
        run = dict(body, run_id=self._id(), state="PENDING", created_at=self._now())
        self.runs[run["run_id"]] = run
        return run

    def _list_recurring(self, query: dict[str, str], **_: Any) -> dict:
        found = self._namespaced(self.recurring_runs, query, "recurring runs")
        # The JSON name in V2beta1ListRecurringRunsResponse (and KFP's proto) is camelCase.
        return self._listing(found, query, "recurringRuns")

    def _create_recurring(self, body: Any, **_: Any) -> dict:
        model = to_model(body, "V2beta1RecurringRun")
        self._checked_reference(model)
        cron = model.trigger.cron_schedule.cron if model.trigger and model.trigger.cron_schedule else None
        if not cron or (not cron.startswith("@") and len(cron.split()) != 6):
            raise BadRequest(f"Invalid input error: cron {cron!r} must have 6 fields (seconds first)")
        if not 1 <= int(model.max_concurrency or 0) <= 10:
            raise BadRequest("Invalid input error: max concurrency must be from 1 to 10")
        if model.mode not in ("ENABLE", "DISABLE"):
            raise BadRequest(f"mode {model.mode!r} must be ENABLE or DISABLE")
        enabled = model.mode == "ENABLE"
        recurring = dict(body, recurring_run_id=self._id(), created_at=self._now())
        recurring.update(
            status="ENABLED" if enabled else "DISABLED", max_concurrency=str(model.max_concurrency)
        )
        recurring["namespace"] = self.experiments[model.experiment_id]["namespace"]
        self.recurring_runs[recurring["recurring_run_id"]] = recurring
        return recurring

    def _recurring(self, rid: str) -> dict:
        if rid not in self.recurring_runs:
            raise BadRequest(f"recurring run {rid} not found", 404)
        return self.recurring_runs[rid]

    def _get_recurring(self, rid: str, **_: Any) -> dict:
        return self._recurring(rid)

    def _set_mode(self, rid: str, verb: str, **_: Any) -> dict:
        # Like KFP: enabling/disabling changes future triggers only; runs already started go on.
        self._recurring(rid).update(mode=verb.upper(), status=f"{verb.upper()}D")
        return {}

    def _delete_recurring(self, rid: str, **_: Any) -> dict:
        self._recurring(rid)
        del self.recurring_runs[rid]
        # Like KFP: the ScheduledWorkflow owns its workflows; Kubernetes deletes them with it.
        for run in self.runs.values():
            if run.get("recurring_run_id") == rid and run["state"] in ("PENDING", "RUNNING", "PAUSED"):
                run["state"] = "CANCELED"
        return {}
