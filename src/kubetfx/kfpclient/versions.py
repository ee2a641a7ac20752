"""Whether a KFP API server's release suits a compiled pipeline: the version preflight.

Two sources of truth: the range of KFP backends each kfp SDK release declares it works
with (its requirement on kfp-server-api), and, for pipelines whose platform spec needs a
newer driver (:func:`kubetfx.pipeline_file.platform_floor`), the releases kubetfx itself
checked its compiled pipelines against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubetfx.pipeline_file import Release


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
# The KFP backend releases kubetfx checked its compiled pipelines against (docs/kubeflow.md
# has the matrix; the oldest is kubetfx.pipeline_file.KUBETFX_BACKEND_FLOOR).
# tests/cluster/test_backend_versions.py checks them against the protos of each release named here.
KUBETFX_BACKENDS_CHECKED: tuple[Release, ...] = ((2, 5, 0), (2, 14, 0), (2, 17, 0))


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
    ``sdkVersion`` the compiled YAML records. With a ``floor``
    (:func:`kubetfx.pipeline_file.platform_floor`: the pipeline's platform spec needs a
    newer driver), a server below it is refused
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
