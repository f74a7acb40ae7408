"""TorchScript export: `torch.jit.trace` of the same export module as ONNX (`seqlab.export.onnx.ExportModel`).

Tracing the task itself would bake in the packed RNN's python branches (``lengths == T``) and the batch sizes
it saw; the export module has no data-dependent python control flow, so one trace serves every batch and
sequence length. ``torch.jit.load(path)(input_ids, attention_mask[, char_ids | token_type_ids])`` needs only torch.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from seqlab.export.onnx import ExportModel, check_export_model, eager_outputs, example_inputs, max_abs_diff


def export_torchscript(task: nn.Module, path: str | Path) -> float:
    """Write `task` traced to `path` (``torch.jit.save``); returns the max |export module - eager| on the traced batch."""
    task.eval()
    model = ExportModel(task)
    inputs = example_inputs(task)
    diff = check_export_model(task, model, inputs)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter(
            "ignore"
        )  # TracerWarnings (HF's shape checks) and TorchScript's DeprecationWarning
        traced = torch.jit.trace(model, tuple(inputs.values()), check_trace=False)
        torch.jit.save(traced, str(path))
    return diff


def check_torchscript(task: nn.Module, path: str | Path, lengths: tuple[int, ...] = (9, 4, 1, 2)) -> float:
    """Max |loaded file - eager| on a batch of other lengths than the traced one (real positions only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path), map_location="cpu")
    inputs = example_inputs(task, lengths, seed=1)
    with torch.no_grad():
        got = loaded(*inputs.values())
    return max_abs_diff(got, eager_outputs(task, inputs), inputs["attention_mask"])
