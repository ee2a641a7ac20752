"""notebooks/quickstart.ipynb runs top to bottom in a real kernel, and is committed clean."""

import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks/quickstart.ipynb"


def test_committed_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "clear the outputs before committing"


def test_runs_top_to_bottom(tmp_path: Path, monkeypatch) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("KUBETFX_METADATA", f"sqlite:///{tmp_path}/metadata.sqlite")
    monkeypatch.setenv("KUBETFX_PIPELINE_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("KUBETFX_PUSH_ROOT", str(tmp_path / "serving"))
    # The kernel is this interpreter, so the notebook sees this venv's kubetfx.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    nbformat.write(nb, tmp_path / "quickstart.executed.ipynb")  # kept for a look at what it showed
    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "SUCCEEDED" in text and "blessed: True" in text
    kinds = {
        kind for cell in nb.cells for output in cell.get("outputs", []) for kind in output.get("data", {})
    }
    assert {"text/html", "image/svg+xml"} <= kinds  # the reports and the lineage picture rendered
