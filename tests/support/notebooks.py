"""Executing a notebook with its parameters set, as papermill does, on a real Jupyter kernel.

A notebook that runs but shows a red box is not done: :func:`execute` fails on any error
output and on any warning a cell prints (Python warnings go to stderr, which JupyterLab shows
in red), such as tqdm's ``TqdmWarning: IProgress not found`` when the widget library is
missing.
"""

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


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """Every error output, stderr stream and warning text of an executed notebook, as
    ``"cell N: ..."`` (empty when every cell ran cleanly)."""
    found = []
    for number, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type == "error":
                found.append(f"cell {number}: {out.ename}: {out.evalue}")
            elif out.output_type == "stream" and out.name == "stderr":
                found.append(f"cell {number}: stderr: {out.text.strip()[:500]}")
            else:
                texts = [out.get("text", "")] + [str(v) for k, v in out.get("data", {}).items()
                                                 if k.startswith("text/")]
                found += [f"cell {number}: warning: {t.strip()[:500]}" for t in texts
                          if "Warning" in t]
    return found


def execute(path: Path, cwd: Path, **values: object) -> nbformat.NotebookNode:
    """Run ``path`` with the parameters ``values`` in ``cwd``; fail if any cell shows an
    error or a warning (:func:`problems`)."""
    nb = nbformat.read(path, as_version=4)
    inject_parameters(nb, **values)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    found = problems(nb)
    assert not found, f"{path.name}:\n" + "\n".join(found)
    return nb


def stream_text(nb: nbformat.NotebookNode) -> str:
    """Everything the notebook's cells printed (stdout)."""
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs if o.output_type == "stream")
