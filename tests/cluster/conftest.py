"""Fixtures for the cluster commands: the KFP stand-in and an isolated kfp client setup."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

_spec = importlib.util.spec_from_file_location(
    "kubetfx_tests_kfp_standin", Path(__file__).with_name("kfp_standin.py")
)
standin_module = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = standin_module
_spec.loader.exec_module(standin_module)
KfpStandIn = standin_module.KfpStandIn

KFP_ENV = (
    "KUBETFX_KFP_HOST",
    "KUBETFX_KFP_NAMESPACE",
    "KUBETFX_KFP_TOKEN",
    "KF_PIPELINES_ENDPOINT",
    "KF_PIPELINES_UI_ENDPOINT",
    "KF_PIPELINES_DEFAULT_EXPERIMENT_NAME",
    "KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME",
)


@pytest.fixture(autouse=True)
def isolated_kfp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No KFP settings from the environment, and kfp's context file in the test's folder."""
    from kfp.client import client

    for name in KFP_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(client.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / ".config/kfp/context.json"))


@pytest.fixture
def standin() -> Iterator[Callable[..., Any]]:
    """Start KFP stand-ins (``standin(version=..., multi_user=..., token=...)``); stopped after the test."""
    started = []

    def start(**kwargs: Any) -> Any:
        server = KfpStandIn(**kwargs).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)


@pytest.fixture
def kubetfx() -> Callable[..., Result]:
    """Invoke the kubetfx CLI in-process; returns click's Result (stdout and stderr apart)."""
    from kubetfx.cli import cli

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        result = CliRunner().invoke(cli, list(args), env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return invoke
