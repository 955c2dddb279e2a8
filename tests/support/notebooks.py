"""Executing a notebook with its parameters set, as papermill does, on a real Jupyter kernel."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient


def inject_parameters(nb: nbformat.NotebookNode, **values: object) -> None:
    """Add a cell after the one tagged ``parameters`` that overrides it (papermill's way)."""
    index = next(
        i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])
    )
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)


def execute(path: Path, cwd: Path, **values: object) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    inject_parameters(nb, **values)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb
