"""``kubetfx rollout MODEL:VERSION``: a stepped canary with automatic rollback."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import click

from kubetfx.cli.options import metadata_option
from kubetfx.errors import ParameterError
from kubetfx.settings import redact


def _split_ref(ref: str) -> tuple[str, str]:
    name, sep, version = ref.rpartition(":")
    if not sep or not name or not version:
        raise ParameterError(f"give MODEL:VERSION (a number or an alias such as candidate), not {ref!r}")
    return name, version


@contextlib.contextmanager
def _local_rig(
    model: str, push_root: str, stable: int, canary: int, router_port: int, prometheus: str | None
) -> Iterator[tuple[Any, str]]:
    """Two KServe model servers on the version folders, the stand-in router in front, and
    a Prometheus scraping it (the one given, else a local ``prometheus`` binary)."""
    from kubetfx.serving.inferenceservice import version_uri
    from kubetfx.serving.modelserver import running_server
    from kubetfx.serving.prometheus import local_prometheus
    from kubetfx.serving.rollout import RouterBackend
    from kubetfx.serving.router import Router, Upstream

    names = {v: f"{model}-predictor-{v:05d}" for v in (stable, canary)}
    with (
        running_server(version_uri(push_root, model, stable), model) as stable_server,
        running_server(version_uri(push_root, model, canary), model) as canary_server,
        Router(
            Upstream(stable_server.url, names[stable]),
            Upstream(canary_server.url, names[canary]),
            port=router_port,
            service=model,
        ) as router,
    ):
        click.echo(f"router (stand-in for KServe's traffic split): {router.url}/v1/models/{model}:predict")
        click.echo(f"  stable version {stable}: {stable_server.url}")
        click.echo(f"  canary version {canary}: {canary_server.url}")
        backend = RouterBackend(router.url, names[stable], names[canary])
        if prometheus:
            yield backend, prometheus
        else:
            with local_prometheus(router.url.removeprefix("http://")) as url:
                click.echo(f"prometheus: {url}")
                yield backend, url


@click.command("rollout")
@click.argument("ref", metavar="MODEL:VERSION")
@click.option("--from", "stable_ref", help="The stable version (a number or alias); default: `production`.")
@click.option(
    "--steps", default="5,25,50,100", show_default=True, help="Canary traffic percentages, in order."
)
@click.option("--window", default="60s", show_default=True, help="Analysis window per step (e.g. 60s, 2m).")
@click.option("--interval", default="10s", show_default=True, help="How often Prometheus is asked.")
@click.option(
    "--warmup", default="30s", show_default=True, help="Canary traffic not judged at the first step."
)
@click.option("--prometheus", "prometheus_url", help="Prometheus URL (required with --kserve).")
@click.option("--max-error-rate", type=float, default=0.01, show_default=True)
@click.option(
    "--max-extra-error-rate", type=float, default=0.01, show_default=True, help="Over the stable's."
)
@click.option("--max-p95-ratio", type=float, default=1.5, show_default=True)
@click.option("--max-p95-extra-ms", type=float, default=100.0, show_default=True)
@click.option("--min-requests", type=int, default=50, show_default=True, help="Per revision and window.")
@click.option("--max-holds", type=int, default=3, show_default=True, help="Windows of too little traffic.")
@click.option("--query-requests", help="PromQL template ({revision}, {window}) for a revision's requests.")
@click.option("--query-errors", help="PromQL template for a revision's failed (5xx) requests.")
@click.option("--query-p95", help="PromQL template for a revision's p95 latency in ms.")
@click.option("--push-root", help="Where the versions were pushed; default: the first KUBETFX_PUSH_ROOT.")
@click.option(
    "--kserve", "namespace", help="Roll out the InferenceService MODEL in this Kubernetes namespace."
)
@click.option(
    "--local", "local", is_flag=True, help="Serve both versions on loopback behind the stand-in router."
)
@click.option("--router-port", type=int, default=0, show_default=True, help="With --local (0: a free port).")
@click.option("--manifest", is_flag=True, help="Print the InferenceService pinned to VERSION and exit.")
@metadata_option
def rollout(
    ref: str,
    stable_ref: str | None,
    steps: str,
    window: str,
    interval: str,
    warmup: str,
    prometheus_url: str | None,
    max_error_rate: float,
    max_extra_error_rate: float,
    max_p95_ratio: float,
    max_p95_extra_ms: float,
    min_requests: int,
    max_holds: int,
    query_requests: str | None,
    query_errors: str | None,
    query_p95: str | None,
    push_root: str | None,
    namespace: str | None,
    local: bool,
    router_port: int,
    manifest: bool,
    metadata: str | None,
) -> None:
    """Move traffic to MODEL:VERSION in steps, judged on Prometheus metrics, and roll back
    automatically when the canary's error rate or p95 latency is worse than the stable's.

    Every decision is recorded in lineage (`kubetfx audit MODEL:VERSION` shows it); the
    `candidate` alias moves to the canary when it starts, `production` to it when promoted.
    Exit status 1 when the canary was rolled back.
    """
    from kubetfx.settings import resolve_push_roots

    model, version_ref = _split_ref(ref)
    root = (push_root or resolve_push_roots()[0]).rstrip("/")
    if manifest:
        from kubetfx.serving.inferenceservice import inference_service, to_yaml

        if not version_ref.isdigit():
            raise ParameterError("--manifest takes a version number")
        click.echo(to_yaml(inference_service(model, int(version_ref), root, namespace=namespace)), nl=False)
        return
    if local == bool(namespace):
        raise ParameterError("choose where to roll out: --kserve NAMESPACE (a cluster) or --local (loopback)")
    if namespace and not prometheus_url:
        raise ParameterError(
            "--kserve needs --prometheus URL (the Prometheus that scrapes Knative's queue-proxy)"
        )

    from kubetfx.cli.store import existing_store
    from kubetfx.lineage.aliases import aliases, resolve_version
    from kubetfx.serving.prometheus import Prometheus, Queries
    from kubetfx.serving.rollout import KServeBackend, RolloutSettings, Thresholds, parse_seconds, run_rollout

    store = existing_store(metadata)
    canary = resolve_version(store, model, version_ref)
    if stable_ref:
        stable = resolve_version(store, model, stable_ref)
    elif "production" in aliases(store, model):
        stable = aliases(store, model)["production"]
    else:
        raise ParameterError(
            f"model {model!r} has no `production` alias: name the stable version with --from"
        )
    if stable == canary:
        raise ParameterError(f"the canary and the stable version are both {canary}: nothing to roll out")
    defaults = Queries()
    queries = Queries(
        requests=query_requests or defaults.requests,
        errors=query_errors or defaults.errors,
        p95_ms=query_p95 or defaults.p95_ms,
    )
    settings = RolloutSettings(
        steps=[int(s) for s in steps.split(",")] if steps else [],
        window_s=parse_seconds(window),
        interval_s=parse_seconds(interval),
        max_holds=max_holds,
        warmup_s=parse_seconds(warmup, allow_zero=True),
        thresholds=Thresholds(
            max_error_rate, max_extra_error_rate, max_p95_ratio, max_p95_extra_ms, min_requests
        ),
    )
    click.echo(f"rollout of {model}: version {stable} (stable) -> {canary} (canary), steps {settings.steps}")

    def run(backend: Any, prom_url: str) -> Any:
        return run_rollout(
            backend,
            Prometheus(prom_url, queries=queries),
            model_name=model,
            canary_version=canary,
            stable_version=stable,
            settings=settings,
            store=store,
            say=click.echo,
        )

    if local:
        with _local_rig(model, root, stable, canary, router_port, prometheus_url) as (backend, prom_url):
            result = run(backend, prom_url)
    else:
        assert namespace and prometheus_url
        kserve = KServeBackend(model, namespace, root, canary)
        live = kserve.served()
        if live != stable:
            raise ParameterError(
                f"InferenceService {namespace}/{model} serves version {live}, not {stable}: "
                f"roll out from what it serves (--from {live})"
            )
        click.echo(f"patching InferenceService {namespace}/{model} to version {canary} ({redact(root)})")
        kserve.start(settings.steps[0])
        result = run(kserve, prometheus_url)
    if result.state == "rolled_back":
        sys.exit(1)
