"""LossHistory.show(): a live plot in a real Jupyter kernel, nothing anywhere else."""

from __future__ import annotations

import base64

import pytest

import lossatlas as la


def test_show_does_nothing_outside_a_notebook():
    history = la.LossHistory()
    assert history.show() is None
    history.record(1.0)  # recording after show() outside a notebook is untouched
    assert history.totals == [1.0]
    with pytest.raises(ValueError, match="every must be a positive integer"):
        history.show(every=0)


def test_show_does_nothing_in_a_terminal_ipython():
    ipython = pytest.importorskip("IPython", reason="needs IPython")
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        assert ipython.get_ipython() is shell
        assert la.LossHistory().show() is None
    finally:
        InteractiveShell.clear_instance()


def test_show_updates_one_output_cell_in_a_jupyter_kernel():
    nbformat = pytest.importorskip("nbformat", reason="the notebook test needs nbformat")
    nbclient = pytest.importorskip("nbclient", reason="the notebook test needs nbclient")
    pytest.importorskip("ipykernel", reason="the notebook test needs ipykernel")
    cells = [
        "import torch, lossatlas as la\n"
        "history = la.LossHistory()\n"
        "handle = history.show(title='live')\n"
        "print(type(handle).__name__)",
        "for step in range(3):\n    history.record(torch.tensor(1.0 / (step + 1)))",
        # the same three records drawn once: what the updated cell must now show
        "again = la.LossHistory()\n"
        "for step in range(3):\n    again.record(torch.tensor(1.0 / (step + 1)))\n"
        "_ = again.show(title='live')",
        "print(la.LossHistory().show(title='live') is not None)",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": "."}}
    )
    client.execute()
    first, second, third, fourth = notebook.cells
    shown = [o for o in first.outputs if o.output_type == "display_data"]
    texts = "".join(o.get("text", "") for o in first.outputs if o.output_type == "stream")
    assert texts.strip() == "DisplayHandle"
    assert len(shown) == 1, first.outputs  # one cell, updated in place
    assert not [o for o in second.outputs if o.output_type == "display_data"]
    updated = base64.b64decode(shown[0]["data"]["image/png"])
    reference = [o for o in third.outputs if o.output_type == "display_data"]
    assert updated.startswith(b"\x89PNG")
    assert updated == base64.b64decode(reference[0]["data"]["image/png"])
    empty = [o for o in fourth.outputs if o.output_type == "display_data"]
    assert updated != base64.b64decode(empty[0]["data"]["image/png"])  # it did change
