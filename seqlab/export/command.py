"""``python -m seqlab export ckpt_path=CKPT format=onnx|torchscript [output=PATH] [opset=17]``.

Writes the model file and a JSON sidecar (``<output>.json``) with what a user needs besides the graph: the input
and output names and their meaning, the label names, the pad id and the tokenizer (to encode text), the char
vocabulary for ``char_ids``, and a CRF's transitions (its Viterbi decoding is not in the graph). Both the export
module and the written file are checked against the trained model; the printed line gives the difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from seqlab.cli import UsageError, parse_options

OPTIONS = {
    "ckpt_path": "a checkpoint written by seqlab train (or a directory written by finetune / save_pretrained)",
    "format": "onnx (default) | torchscript",
    "output": "the file to write (default: next to the checkpoint, <name>.onnx | <name>.pt); the sidecar is <output>.json",
    "opset": "ONNX opset version (default 17)",
}
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


def default_output(ckpt: Path, fmt: str) -> Path:
    if ckpt.is_dir():
        return ckpt / f"model{SUFFIXES[fmt]}"
    return ckpt.with_suffix(SUFFIXES[fmt])


def _describe_inputs(names: list[str], pad_id: int) -> dict[str, dict[str, Any]]:
    meaning = {
        "input_ids": f"token ids (the tokenizer below); each row's real tokens first, then pad id {pad_id}",
        "attention_mask": "1 at real tokens, 0 at padding: a prefix of each row, at least one real token per row",
        "char_ids": "each word's character ids (index into `chars`: 0 = <pad>, 1 = <unk>), padded with 0; "
        "padded words are all 0",
        "token_type_ids": "0 for the first text, 1 for the second text of a pair",
    }
    shapes = {"char_ids": ["batch", "time", "chars"]}
    return {
        n: {"shape": shapes.get(n, ["batch", "time"]), "dtype": "int64", "meaning": meaning[n]} for n in names
    }


def _describe_output(task: nn.Module, name: str) -> dict[str, Any]:
    if name == "logits":
        return {
            "shape": ["batch", "labels"],
            "dtype": "float32",
            "meaning": "unnormalised class scores: softmax gives the probabilities, argmax the label",
        }
    if getattr(task, "crf", None) is not None:
        meaning = (
            "the CRF's per-token emission scores; the prediction is their Viterbi decoding with `crf` "
            "(seqlab.models.crf.CRF.decode), which is not in the graph: an argmax ignores the transitions"
        )
    else:
        meaning = "per-token tag scores: argmax over the last axis gives each token's tag"
    return {
        "shape": ["batch", "time", "labels"],
        "dtype": "float32",
        "meaning": meaning + "; with a sub-word tokenizer only each word's first token is scored",
    }


def sidecar(
    task: nn.Module, model_names: list[str], output: str, data: dict[str, Any], extra: dict[str, Any]
) -> dict:
    """The JSON written next to the exported file."""
    from seqlab.export.onnx import pad_token_id, task_kind

    pad = pad_token_id(task)
    out: dict[str, Any] = {
        **extra,
        "task": task_kind(task),
        "encoder": type(task.encoder).__name__,
        "inputs": _describe_inputs(model_names, pad),
        "outputs": {output: _describe_output(task, output)},
        "labels": [str(x) for x in data.get("labels") or []],
        "pad_token_id": pad,
    }
    crf = getattr(task, "crf", None)
    if crf is not None:
        out["crf"] = {
            "start_transitions": crf.start_transitions.tolist(),  # (C,)
            "end_transitions": crf.end_transitions.tolist(),  # (C,)
            "transitions": crf.transitions.tolist(),  # (C, C): [i][j] scores tag i followed by tag j
        }
    if "char_ids" in model_names:
        out["chars"] = data.get("chars")
    out["tokenizer"] = data.get("tokenizer")
    out["tokenizer_format"] = (
        "seqlab.data.tokenizers.tokenizer_from_state(tokenizer) rebuilds it. A string is a `tokenizers` JSON "
        "(tokenizers.Tokenizer.from_str; encode with add_special_tokens=False, one id per word); a dict holds an HF "
        "tokenizer's save_pretrained files"
    )
    return out


def _load(ckpt: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The task (a ValueError for a file that is not a seqlab checkpoint, or a task export cannot take) and the
    DataModule's state."""
    from seqlab.checkpoint import data_state, load_task
    from seqlab.export.onnx import task_kind

    task = load_task(ckpt)
    task_kind(task)  # a language model is refused before anything is read or written
    return task, data_state(ckpt)


def main(argv: list[str]) -> None:
    opts = parse_options(argv, OPTIONS, "export")
    if "ckpt_path" not in opts:
        raise UsageError("ckpt_path=... is required (a checkpoint written by seqlab train)")
    fmt = opts.get("format", "onnx")
    if fmt not in SUFFIXES:
        raise UsageError(f"format={fmt!r}: choose one of {', '.join(SUFFIXES)}")
    try:
        opset = int(opts.get("opset", "17"))
    except ValueError:
        raise UsageError(f"opset={opts['opset']!r}: give an integer ONNX opset version (e.g. 17)") from None
    if "opset" in opts and fmt != "onnx":
        raise UsageError("opset= applies to format=onnx only")
    ckpt = Path(opts["ckpt_path"])
    if not ckpt.exists():
        raise ValueError(f"ckpt_path={ckpt}: no such file or directory")
    output = Path(opts["output"]) if opts.get("output") else default_output(ckpt, fmt)
    if not output.parent.is_dir():
        raise ValueError(f"output={output}: the directory {output.parent} does not exist")

    from seqlab.export.onnx import exported_extra_inputs, output_name

    task, data = _load(ckpt)
    if fmt == "onnx":
        from seqlab.export.onnx import check_onnx, export_onnx

        diff = export_onnx(task, output, opset)
        file_diff = check_onnx(task, output)
        extra = {"format": "onnx", "opset": opset, "runtime": "onnxruntime (or any ONNX runtime)"}
        checked = "onnxruntime" if file_diff is not None else None
    else:
        from seqlab.export.torchscript import check_torchscript, export_torchscript

        diff = export_torchscript(task, output)
        file_diff = check_torchscript(task, output)
        extra = {"format": "torchscript", "runtime": "torch.jit.load(path)(*inputs, in the order listed)"}
        checked = "torch.jit.load"
    extra.update(
        file=output.name,
        source=str(ckpt),
        max_abs_diff={"export_module_vs_trained": diff, "file_vs_trained": file_diff},
    )
    names = ["input_ids", "attention_mask", *exported_extra_inputs(task.encoder)]
    meta = sidecar(task, names, output_name(task), data, extra)
    meta_path = output.with_name(output.name + ".json")
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    check = (
        f"{checked} matches the trained model to {file_diff:.1e}"
        if checked
        else "not checked: pip install onnxruntime to compare the file with the trained model"
    )
    print(
        f"wrote {output} ({fmt}, inputs {', '.join(names)} -> {output_name(task)}) and {meta_path.name}; {check}"
    )
