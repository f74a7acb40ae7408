"""The notebooks run top to bottom as a new user runs them (a fresh kernel), and say what they claim to show.

Executed with nbclient (what nbmake runs) in a copy under tmp_path, so the run's ``outputs/`` land there and the
committed notebook keeps its cleared outputs. About 30 s: kernel start, imports, 3 epochs of the LSTM.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, cwd: Path):
    """Run the notebook `name` in `cwd` with the current interpreter's kernel; a cell that raises fails here."""
    shutil.copy(NOTEBOOKS / name, cwd / name)
    nb = nbformat.read(cwd / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return nb


def tagged(nb, tag: str):
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r} expected"
    return cells[0]


def stdout(cell) -> str:
    return "".join(
        o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"
    )


def test_committed_with_outputs_cleared():
    nb = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert not any("class " in c.source for c in code)  # notebooks import from seqlab, define no classes


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_quickstart_runs_and_reads_negation(tmp_path):
    nb = execute("quickstart.ipynb", tmp_path)

    # "<label> <prob>  <sentence>" a line; a sentence a bag of words gets wrong must come out right
    lines = stdout(tagged(nb, "predictions")).splitlines()
    labels = {" ".join(line.split()[2:]): line.split()[0] for line in lines if len(line.split()) > 2}
    assert labels["the plot was not good"] == "negative", lines
    assert labels["the plot was good but the cast was not bad"] == "positive", lines

    curves = tagged(nb, "curves")
    assert any("image/png" in o.get("data", {}) for o in curves.outputs)
    assert list(tmp_path.glob("outputs/*/*/curves.png"))
