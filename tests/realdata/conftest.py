"""Real tabular datasets that ship inside installed packages, found through the import
system (never by a checkout or venv path), with the columns the tests change.

* ``penguins-raw``: the raw Palmer LTER penguins file from ``palmerpenguins`` (a runtime
  dependency): headers with spaces and parentheses, an ID, a date, free-text comments.
* ``seattle-weather``: daily Seattle weather 2012-2015 from ``vega_datasets`` (a test-only
  dependency): one row a day, a date per row, a five-valued category with rare values.
* ``airports``: the US airports table from ``vega_datasets``: IATA codes, airport names,
  thousands of cities, and four countries seen once each next to 3,372 "USA".

Any test that takes a ``dataset`` argument runs once per dataset (``labelled_dataset``:
once per dataset with a label to train on). While these tests run,
no connection leaves the machine: a dataset that tried to download would fail here.
"""

from __future__ import annotations

import importlib.util
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass(frozen=True)
class RealDataset:
    """A CSV inside an installed package, and what the tests expect of it."""

    name: str
    package: str
    resource: str  # path inside the package folder
    label: str  # label_key, or "" for none
    shift: str  # a numeric column the second run shifts
    category: str  # a categorical column the second run gives a new value
    empty: str  # a column the second run empties
    open_features: dict[str, str] = field(default_factory=dict)  # expected free strings -> kind

    def path(self) -> Path:
        """The file, located through the package's import spec (nothing imported or fetched)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(
                f"package {self.package!r} is not installed: it ships the {self.name} dataset "
                "(install kubetfx's dev extra)"
            )
        path = Path(next(iter(spec.submodule_search_locations)), self.resource)
        if not path.is_file():
            raise RuntimeError(f"{self.package} no longer ships {self.resource}")
        return path


DATASETS = [
    RealDataset(
        name="penguins-raw",
        package="palmerpenguins",
        resource="data/penguins-raw.csv",
        label="Species",
        shift="Body Mass (g)",
        category="Island",
        empty="Sex",  # a string column with 11 missing values: its type cannot change
        open_features={"Comments": "free text", "Date Egg": "date", "Individual ID": "id"},
    ),
    RealDataset(
        name="seattle-weather",
        package="vega_datasets",
        resource="_data/seattle-weather.csv",
        label="weather",
        shift="temp_max",
        category="weather",
        empty="wind",
        open_features={"date": "date"},
    ),
    RealDataset(
        name="airports",
        package="vega_datasets",
        resource="_data/airports.csv",
        label="",  # no label: a table to validate, not to train on
        shift="latitude",
        category="state",
        empty="country",
        open_features={"iata": "id", "name": "free text", "city": "high-cardinality"},
    ),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dataset" in metafunc.fixturenames:
        metafunc.parametrize("dataset", DATASETS, ids=[d.name for d in DATASETS], scope="module")
    if "labelled_dataset" in metafunc.fixturenames:
        labelled = [d for d in DATASETS if d.label]
        metafunc.parametrize("labelled_dataset", labelled, ids=[d.name for d in labelled])


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection off this machine fails the test (loopback stays usable)."""
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else ""
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"a real-data test tried to reach {address!r}: datasets must ship locally")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
