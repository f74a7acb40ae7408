"""ONNX export: the export module equals the packed model, onnxruntime equals eager on unseen shapes, and the
``seqlab export`` command writes the file and its sidecar from a real checkpoint."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

from seqlab.export.onnx import (
    ExportModel,
    ExportRNNEncoder,
    eager_outputs,
    example_inputs,
    export_onnx,
    max_abs_diff,
    run_onnx,
)
from seqlab.models.char import CharEncoder
from seqlab.models.encoders.cnn import CNNEncoder
from seqlab.models.encoders.embedding import EmbeddingEncoder
from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.tasks.classification import TextClassificationTask
from seqlab.tasks.tagging import SequenceTaggingTask

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

OPT = functools.partial(torch.optim.Adam)
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
# Batches of shapes the export never saw (it traces lengths (6, 3, 1)): a length-1 row, a batch of one, no padding.
UNSEEN = [(9, 4, 1, 2), (1,), (7,), (3, 3)]


def rnn(
    cell: str = "lstm", layers: int = 2, bidirectional: bool = True, char: str | None = None
) -> RNNEncoder:
    chars = CharEncoder(num_chars=14, char_embed_dim=5, hidden_size=4, kind=char) if char else None
    return RNNEncoder(
        40,
        0,
        embed_dim=8,
        hidden_size=6,
        num_layers=layers,
        cell=cell,
        bidirectional=bidirectional,
        char_encoder=chars,
    )


MODELS = {
    "bilstm2-last": lambda: TextClassificationTask(rnn("lstm"), 3, OPT, pooling="last"),
    "bilstm2-max": lambda: TextClassificationTask(rnn("lstm"), 3, OPT, pooling="max"),
    "bigru2-last": lambda: TextClassificationTask(rnn("gru"), 3, OPT, pooling="last"),
    "bigru2-max": lambda: TextClassificationTask(rnn("gru"), 3, OPT, pooling="max"),
    "rnn1-last": lambda: TextClassificationTask(rnn("rnn", 1, False), 3, OPT, pooling="last"),
    "cnn-max": lambda: TextClassificationTask(
        CNNEncoder(40, 0, embed_dim=8, hidden_size=4, kernel_sizes=(3, 4)), 3, OPT
    ),
    "bow-mean": lambda: TextClassificationTask(EmbeddingEncoder(40, 0, embed_dim=8), 3, OPT, pooling="mean"),
    "tag-bilstm": lambda: SequenceTaggingTask(rnn("lstm", 1), len(TAGS), TAGS, OPT),
    "tag-bilstm-crf-charcnn": lambda: SequenceTaggingTask(
        rnn("lstm", 2, char="cnn"), len(TAGS), TAGS, OPT, use_crf=True
    ),
    "tag-bilstm-charlstm": lambda: SequenceTaggingTask(rnn("lstm", 1, char="lstm"), len(TAGS), TAGS, OPT),
}


def build(name: str):
    torch.manual_seed(0)
    return MODELS[name]().eval()


@pytest.mark.parametrize("name", [n for n in MODELS if n.startswith(("bi", "rnn", "tag"))])
def test_export_module_equals_packed_model(name):
    task = build(name)
    model = ExportModel(task)
    # The export module only rewires the task's own parameters: nothing is copied.
    assert {id(p) for p in model.parameters()} <= {id(p) for p in task.parameters()}
    encoder = ExportRNNEncoder(task.encoder)
    for seed, lengths in enumerate([(6, 3, 1), *UNSEEN]):
        inputs = example_inputs(task, lengths, seed=seed)
        with torch.no_grad():
            assert (
                max_abs_diff(model(*inputs.values()), eager_outputs(task, inputs), inputs["attention_mask"])
                <= 1e-6
            )
            # Every position of the encoder, padding included (zero in both).
            got = encoder(**inputs).last_hidden_state
            want = task.encoder(**inputs).last_hidden_state
        assert max_abs_diff(got, want) <= 1e-6


@pytest.mark.parametrize("name", list(MODELS))
def test_onnxruntime_equals_eager_on_unseen_shapes(name, tmp_path):
    task = build(name)
    path = tmp_path / "model.onnx"
    assert export_onnx(task, path) <= 1e-6
    for seed, lengths in enumerate(UNSEEN):
        inputs = example_inputs(task, lengths, seed=10 + seed, word_length=3 + seed)  # other char lengths too
        got, want = run_onnx(path, inputs), eager_outputs(task, inputs)
        B, T = inputs["input_ids"].shape
        assert got.shape == ((B, 3) if isinstance(task, TextClassificationTask) else (B, T, len(TAGS)))
        assert max_abs_diff(got, want, inputs["attention_mask"]) <= 1e-5, lengths  # tagging: real tokens only


def test_hf_encoder_exports(tiny_bert, tmp_path):
    """A tiny BERT (built offline) traces as it is, with token_type_ids as an input."""
    from seqlab.models.encoders.hf import HFEncoder

    for task in (
        TextClassificationTask(HFEncoder(str(tiny_bert)), 2, OPT, pooling="pooler"),
        SequenceTaggingTask(HFEncoder(str(tiny_bert)), len(TAGS), TAGS, OPT),
    ):
        task.eval()
        path = tmp_path / "bert.onnx"
        export_onnx(task, path)
        for lengths in [(9, 4, 1), (1,)]:
            inputs = example_inputs(task, lengths, seed=3)
            assert "token_type_ids" in inputs
            assert (
                max_abs_diff(run_onnx(path, inputs), eager_outputs(task, inputs), inputs["attention_mask"])
                <= 1e-5
            )


# ---- the command ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lstm_checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint: 2 steps of the lstm experiment on the embedded NegationSentiment data."""
    from seqlab.train import run
    from tests.conftest import compose_cfg

    out = tmp_path_factory.mktemp("lstm_run")
    cfg = compose_cfg(
        "+experiment=lstm",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "data.max_train_samples=200",
        "data.max_eval_samples=40",
        "callbacks.rich_progress_bar=null",
        output_dir=out,
    )
    return Path(run(cfg)["best_model_path"])


def export(capsys, *args: str) -> tuple[int, str, str]:
    """`seqlab export args`: (exit status, stdout, stderr)."""
    from seqlab.cli import main

    try:
        main(["export", *args])
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_command_writes_onnx_and_sidecar(lstm_checkpoint, tmp_path, capsys):
    from seqlab.checkpoint import data_state, load_task
    from seqlab.data.tokenizers import tokenizer_from_state

    output = tmp_path / "sentiment.onnx"
    code, out, err = export(capsys, f"ckpt_path={lstm_checkpoint}", "format=onnx", f"output={output}")
    assert code == 0, err
    assert out.count("\n") == 1 and str(output) in out and "onnxruntime matches" in out
    meta = json.loads((tmp_path / "sentiment.onnx.json").read_text())
    assert list(meta["inputs"]) == ["input_ids", "attention_mask"] and list(meta["outputs"]) == ["logits"]
    assert meta["labels"] == data_state(lstm_checkpoint)["labels"] and meta["pad_token_id"] == 0
    assert meta["max_abs_diff"]["file_vs_trained"] <= 1e-5

    # A user with only the two files: encode text with the sidecar's tokenizer, run onnxruntime.
    tok = tokenizer_from_state(meta["tokenizer"])
    rows = tok.encode_batch(["the film was not good", "great"])
    T = max(map(len, rows))
    ids = torch.tensor([r + [meta["pad_token_id"]] * (T - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
    got = run_onnx(output, {"input_ids": ids, "attention_mask": mask})
    want = eager_outputs(load_task(lstm_checkpoint), {"input_ids": ids, "attention_mask": mask})
    assert max_abs_diff(got, want) <= 1e-5


def test_command_default_output_next_to_checkpoint(lstm_checkpoint, capsys):
    code, out, err = export(capsys, f"ckpt_path={lstm_checkpoint}")
    assert code == 0, err
    assert lstm_checkpoint.with_suffix(".onnx").is_file()
    assert lstm_checkpoint.with_name(lstm_checkpoint.stem + ".onnx.json").is_file()


def lm_checkpoint(path: Path) -> Path:
    """A language model checkpoint, built by hand (no training): what `load_task` reads."""
    from hydra.utils import instantiate

    cfg = {
        "_target_": "seqlab.tasks.language_modeling.LanguageModelTask",
        "vocab_size": 20,
        "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True},
        "encoder": {
            "_target_": "seqlab.models.encoders.rnn.RNNEncoder",
            "vocab_size": 20,
            "embed_dim": 8,
            "hidden_size": 8,
        },
    }
    torch.save({"hyper_parameters": cfg, "state_dict": instantiate(cfg).state_dict()}, path)
    return path


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["ckpt_path=/no/such.ckpt"], 1, "no such file"),
        (["ckpt_path={ckpt}", "format=xml"], 2, "format='xml': choose one of onnx, torchscript"),
        (["ckpt_path={ckpt}", "opset=seventeen"], 2, "opset='seventeen'"),
        (["format=onnx"], 2, "ckpt_path=... is required"),
        (["ckpt_path={lm}"], 1, "LanguageModelTask"),
        (["ckpt_path={junk}"], 1, "not a seqlab checkpoint"),
    ],
)
def test_command_errors_are_one_line(args, code, message, tmp_path, capsys):
    junk = tmp_path / "junk.ckpt"
    junk.write_text("not a checkpoint")
    paths = {"ckpt": junk, "lm": lm_checkpoint(tmp_path / "lm.ckpt"), "junk": junk}
    got, out, err = export(capsys, *(a.format(**paths) for a in args))
    assert got == code
    assert err.startswith("seqlab export: error: ") and err.count("\n") == 1 and message in err, err
    assert not list(tmp_path.glob("*.onnx"))
