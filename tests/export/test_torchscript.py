"""TorchScript export: the traced file, loaded back with `torch.jit.load`, equals the eager task on shapes it
never saw; and ``seqlab export format=torchscript`` on a (hand-built) tagger checkpoint with a CRF and chars."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from seqlab.export.onnx import eager_outputs, example_inputs, max_abs_diff
from seqlab.export.torchscript import export_torchscript
from seqlab.models.char import CharEncoder
from seqlab.models.encoders.cnn import CNNEncoder
from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.tasks.classification import TextClassificationTask
from seqlab.tasks.tagging import SequenceTaggingTask

OPT = functools.partial(torch.optim.Adam)
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
MODELS = {
    "bilstm2-last": lambda: TextClassificationTask(
        RNNEncoder(40, 0, 8, 6, 2, "lstm", True), 3, OPT, pooling="last"
    ),
    "gru-max": lambda: TextClassificationTask(
        RNNEncoder(40, 0, 8, 6, 1, "gru", False), 3, OPT, pooling="max"
    ),
    "cnn-max": lambda: TextClassificationTask(CNNEncoder(40, 0, 8, 4, (3, 5)), 3, OPT),
    "tag-bilstm-crf-charlstm": lambda: SequenceTaggingTask(
        RNNEncoder(40, 0, 8, 6, 1, "lstm", True, char_encoder=CharEncoder(14, 5, 4, "lstm")),
        len(TAGS),
        TAGS,
        OPT,
        use_crf=True,
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_torchscript_round_trip_equals_eager(name, tmp_path):
    torch.manual_seed(0)
    task = MODELS[name]().eval()
    path = tmp_path / "model.pt"
    assert export_torchscript(task, path) <= 1e-6
    loaded = torch.jit.load(str(path))
    for seed, lengths in enumerate([(9, 4, 1, 2), (1,), (5, 5)]):
        inputs = example_inputs(task, lengths, seed=seed, word_length=2 + seed)
        with torch.no_grad():
            got = loaded(*inputs.values())
        assert max_abs_diff(got, eager_outputs(task, inputs), inputs["attention_mask"]) <= 1e-6, lengths


def tagger_checkpoint(path: Path) -> Path:
    """A BiLSTM-CRF tagger with a char-CNN, as `seqlab train` would save it (config + weights + data state),
    built by hand: the command only needs what `load_task` and `data_state` read."""
    from seqlab.data.tokenizers import WordTokenizer

    cfg = {
        "_target_": "seqlab.tasks.tagging.SequenceTaggingTask",
        "num_labels": len(TAGS),
        "labels": TAGS,
        "use_crf": True,
        "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True},
        "encoder": {
            "_target_": "seqlab.models.encoders.rnn.RNNEncoder",
            "vocab_size": 12,
            "pad_token_id": 0,
            "embed_dim": 8,
            "hidden_size": 6,
            "bidirectional": True,
            "char_encoder": {"_target_": "seqlab.models.char.CharEncoder", "num_chars": 10, "kind": "cnn"},
        },
    }
    tokenizer = WordTokenizer.fit(["Jane visited Oslo .", "Omar left Lima ."])
    data = {"tokenizer": tokenizer.state(), "labels": TAGS, "chars": ["<pad>", "<unk>", *"JaneOsl."]}
    torch.save(
        {"hyper_parameters": cfg, "state_dict": instantiate(cfg).state_dict(), "TaggingDataModule": data},
        path,
    )
    return path


def test_command_torchscript_sidecar(tmp_path, capsys):
    from seqlab.checkpoint import load_task
    from seqlab.cli import main

    ckpt = tagger_checkpoint(tmp_path / "tagger.ckpt")
    main(["export", f"ckpt_path={ckpt}", "format=torchscript"])
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and "tagger.pt" in out and "torch.jit.load matches" in out, out + err
    meta = json.loads((tmp_path / "tagger.pt.json").read_text())
    assert list(meta["inputs"]) == ["input_ids", "attention_mask", "char_ids"] and list(meta["outputs"]) == [
        "scores"
    ]
    assert meta["labels"] == TAGS and meta["chars"][:2] == ["<pad>", "<unk>"]
    task = load_task(ckpt)
    assert torch.tensor(meta["crf"]["transitions"]).shape == (len(TAGS), len(TAGS))
    assert torch.allclose(torch.tensor(meta["crf"]["transitions"]), task.crf.transitions)
    assert "Viterbi" in meta["outputs"]["scores"]["meaning"]

    inputs = example_inputs(task, (4, 2), seed=5)
    with torch.no_grad():
        got = torch.jit.load(str(tmp_path / "tagger.pt"))(*inputs.values())
    assert max_abs_diff(got, eager_outputs(task, inputs), inputs["attention_mask"]) <= 1e-6


def test_command_opset_only_for_onnx(tmp_path, capsys):
    from seqlab.cli import main

    ckpt = tagger_checkpoint(tmp_path / "tagger.ckpt")
    with pytest.raises(SystemExit) as exit_info:
        main(["export", f"ckpt_path={ckpt}", "format=torchscript", "opset=13"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == "seqlab export: error: opset= applies to format=onnx only"
