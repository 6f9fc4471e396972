"""The path-analysis notebook run headless (nbclient, the venv's kernel) against the tables
of a prefix: the browser-free way to see it. `make screenshots` keeps the run's outputs in
the committed notebook (so a reader sees the analysis without running it) and writes its
charts to docs/img/; the integration test checks the run's numbers against the oracle."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

from conf.settings import REPO_ROOT

NOTEBOOK = REPO_ROOT / "dashboards" / "jupyter" / "path_analysis.ipynb"


def execute(table_prefix: str, path: Path = NOTEBOOK):
    """The notebook after a run over the tables of `table_prefix` (outputs in its cells)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    previous = os.environ.get("TABLE_NAMESPACE_PREFIX")
    os.environ["TABLE_NAMESPACE_PREFIX"] = table_prefix  # the kernel inherits it
    try:
        # No per-cell timings: a re-run changes the committed file only where its results do.
        NotebookClient(notebook, timeout=300, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if previous is None:
            os.environ.pop("TABLE_NAMESPACE_PREFIX")
        else:
            os.environ["TABLE_NAMESPACE_PREFIX"] = previous
    return notebook


def outputs(notebook) -> list:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def charts(notebook) -> dict[str, bytes]:
    """{slug of the section heading above the chart: PNG bytes} for every chart of the run."""
    found, heading = {}, "chart"
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and (match := re.search(r"^#+\s*(.+)$", cell.source, re.M)):
            heading = re.sub(r"[^a-z0-9]+", "-", match.group(1).split(":")[0].lower()).strip("-")
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if "image/png" in output.get("data", {}):
                found[heading if heading not in found else f"{heading}-{len(found) + 1}"] = \
                    base64.b64decode(output["data"]["image/png"])
    return found


def save(notebook, path: Path = NOTEBOOK) -> None:
    import nbformat

    nbformat.write(notebook, path)
