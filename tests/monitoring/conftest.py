"""Real Prometheus and Pushgateway (Debian's packages, installed by ``make test``), each
started on a free loopback port for the test session, with its own data folder."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def binary(name: str) -> str:
    """A Prometheus tool from Debian's packages; the test fails (not skips) without it."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if found is None:
        pytest.fail(f"{name} is not installed: make test installs prometheus and prometheus-pushgateway")
    return found


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{url} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


class Service:
    """A started server: its URL, and stop/start to take it away mid-run."""

    def __init__(self, argv: list[str], url: str, ready: str, log: Path) -> None:
        self.argv, self.url, self.ready, self.log = argv, url, ready, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        out = self.log.open("a")
        self.process = subprocess.Popen(
            self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        out.close()
        _wait_ready(self.url + self.ready, self.process, self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture(scope="session")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("pushgateway")
    port = _free_port()
    service = Service(
        [
            binary("prometheus-pushgateway"),
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-admin-api",
        ],
        f"http://127.0.0.1:{port}",
        "/-/ready",
        base / "pushgateway.log",
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()


def wipe(gateway: Service) -> None:
    """Delete every group from the Pushgateway (its admin API), so tests share nothing."""
    request = urllib.request.Request(gateway.url + "/api/v1/admin/wipe", method="PUT")
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture
def gateway(pushgateway: Service) -> Iterator[Service]:
    """The session's Pushgateway, emptied before the test, running."""
    if pushgateway.process is None:
        pushgateway.start()
    wipe(pushgateway)
    yield pushgateway
    if pushgateway.process is None:
        pushgateway.start()


@pytest.fixture(scope="session")
def prometheus(pushgateway: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Prometheus scraping the Pushgateway every second (honor_labels, as a Pushgateway
    scrape must be configured)."""
    base = tmp_path_factory.mktemp("prometheus")
    port = _free_port()
    target = pushgateway.url.removeprefix("http://")
    (base / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: pushgateway\n    honor_labels: true\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    service = Service(
        [
            binary("prometheus"),
            f"--config.file={base / 'prometheus.yml'}",
            f"--storage.tsdb.path={base / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        f"http://127.0.0.1:{port}",
        "/-/ready",
        base / "prometheus.log",
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()
