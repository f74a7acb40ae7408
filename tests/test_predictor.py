"""Using a trained model: seqlab.load, `seqlab predict`, `seqlab eval`, load_from_checkpoint, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import seqlab
from seqlab.checkpoint import load_task
from seqlab.cli import main as cli_main
from seqlab.tasks.classification import TextClassificationTask
from seqlab.tasks.language_modeling import LanguageModelTask
from seqlab.tasks.tagging import SequenceTaggingTask
from seqlab.train import run
from tests.conftest import compose_cfg
from tests.helpers.tiny_data import write_tagging

QUICK = ["callbacks.rich_progress_bar=null"]


@pytest.fixture(scope="module")
def lstm_run(tmp_path_factory) -> dict:
    """The README's LSTM on the embedded data, 2 epochs (test accuracy 1.0)."""
    out = tmp_path_factory.mktemp("lstm")
    return run(compose_cfg("+experiment=lstm", "trainer.max_epochs=2", *QUICK, output_dir=out))


@pytest.fixture(scope="module")
def tagger_run(tmp_path_factory) -> dict:
    """A BiLSTM tagger on generated PER / LOC sentences (jsonl tokens / tags)."""
    out = tmp_path_factory.mktemp("tagger")
    files = write_tagging(out)
    return run(
        compose_cfg(
            "+experiment=bilstm_conll",
            "data=tagging",
            "data.source.path=jsonl",
            "data.source.reader_kwargs=null",
            *(f"data.source.data_files.{k}={v}" for k, v in files.items()),
            "data.tag_scheme=IOB2",
            "trainer.max_epochs=6",
            "model.encoder.hidden_size=32",
            "model.optimizer.lr=0.01",
            *QUICK,
            output_dir=out,
        )
    )


def test_load_predicts_labels_and_probabilities_in_input_order(lstm_run):
    p = seqlab.load(lstm_run["best_model_path"])
    assert p.task == "classification" and p.labels == ["negative", "positive"]
    texts = [
        "the plot was not good",
        "the plot was bad but the music was not bad",
        "its cast was never boring and the score was really superb",
        "the ending felt good",
    ]
    out = p.predict(texts)
    assert [r["text"] for r in out] == texts  # input order, although batches are sorted by length
    assert [r["label"] for r in out] == ["negative", "positive", "positive", "positive"]
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-5 for r in out)
    p.batch_size = 1  # one at a time: the same numbers as in length-sorted batches
    again = p.predict(texts)
    for a, b in zip(out, again, strict=True):
        assert a["label"] == b["label"] and a["probs"] == pytest.approx(b["probs"], abs=1e-5)


def test_predictions_match_the_test_time_predictions(lstm_run, tmp_path):
    """`seqlab predict` on the test rows (shuffled lengths, from a file) gives the task's own test-time labels."""
    from hydra.utils import instantiate

    from seqlab.checkpoint import data_state

    cfg = compose_cfg("+experiment=lstm", output_dir=tmp_path)
    dm = instantiate(cfg.data)
    dm.load_state_dict(data_state(lstm_run["best_model_path"]))
    dm.setup("fit")
    model = load_task(lstm_run["best_model_path"])
    texts = dm.source.load()["test"]["text"][:100]
    with torch.no_grad():
        expected = []
        for batch in dm.test_dataloader():
            expected += [dm.label_vocab.labels[i] for i in model.logits(batch).argmax(-1).tolist()]
    expected = dm.in_row_order(expected, "test")  # the loader goes longest first
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "seqlab",
            "predict",
            f"ckpt_path={lstm_run['best_model_path']}",
            f"input={tmp_path / 'in.txt'}",
            f"output={tmp_path / 'out.jsonl'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == texts
    assert [r["label"] for r in rows] == expected[:100]


def test_tagger_predicts_tags_and_spans(tagger_run):
    p = seqlab.load(tagger_run["best_model_path"])
    assert p.task == "tagging"
    out = p.predict(["Jane visited Oslo .", ["Omar", "and", "Mei", "left", "Lima", "."]])
    assert out[0]["tags"] == ["B-PER", "O", "B-LOC", "O"]
    assert out[0]["spans"] == [
        {"type": "PER", "start": 0, "end": 1, "text": "Jane"},
        {"type": "LOC", "start": 2, "end": 3, "text": "Oslo"},
    ]
    assert [s["text"] for s in out[1]["spans"]] == ["Omar", "Mei", "Lima"]


def test_language_model_perplexity_and_generation(tmp_path):
    cfg = compose_cfg(
        "+experiment=lstm_wikitext2",
        "data=wikitext2",
        "data/source=hf",
        "data.source.path=text",
        f"data.source.data_files.train={_lm_corpus(tmp_path)}",
        "data.source.data_files.validation=null",
        "data.source.data_files.test=null",
        "data.bptt=8",
        "data.batch_size=4",
        "data.eval_batch_size=2",
        "model.adaptive_softmax_cutoffs=null",
        "model.tie_weights=false",
        "model.encoder.embed_dim=16",
        "model.encoder.hidden_size=16",
        "model.encoder.num_layers=1",
        "model.encoder.dropout=0.0",
        "trainer.max_epochs=15",
        "model.optimizer.lr=0.02",
        *QUICK,
        output_dir=tmp_path / "run",
    )
    summary = run(cfg)
    p = seqlab.load(summary["best_model_path"])
    assert p.task == "language_modeling"
    seen, shuffled = p.predict(["the cat sat on the mat", "mat the on sat cat the"])
    assert seen["tokens"] == 7 and seen["ppl"] < shuffled["ppl"]  # the corpus' word order is likelier
    text = p.generate("the cat", n=5, seed=0)
    assert text.startswith("the cat ") and len(text.split()) == 7
    assert p.generate("the cat", n=5, seed=0) == text  # seeded
    # eval reproduces the run's test perplexity exactly (the test split is carved here: none given)
    cli_main(
        [
            "eval",
            f"ckpt_path={summary['best_model_path']}",
            f"output_dir={tmp_path / 'eval'}",
            "split=validation",
        ]
    )
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["val"]["val/ppl"] == pytest.approx(
        summary["best_score"], rel=1e-6
    )


def _lm_corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("the cat sat on the mat\nthe dog sat on the rug\n" * 60)
    return path


def test_load_from_checkpoint_works_for_every_task(lstm_run, tagger_run):
    task = TextClassificationTask.load_from_checkpoint(lstm_run["best_model_path"])
    assert isinstance(task, TextClassificationTask) and task.hparams.labels == ["negative", "positive"]
    assert isinstance(
        SequenceTaggingTask.load_from_checkpoint(tagger_run["best_model_path"]), SequenceTaggingTask
    )
    with pytest.raises(ValueError, match="holds a TextClassificationTask, not a LanguageModelTask"):
        LanguageModelTask.load_from_checkpoint(lstm_run["best_model_path"])


def test_eval_reproduces_the_training_runs_test_metrics(lstm_run, tagger_run, tmp_path):
    for name, result in (("lstm", lstm_run), ("tagger", tagger_run)):
        out = tmp_path / name
        cli_main(["eval", f"ckpt_path={result['best_model_path']}", f"output_dir={out}"])
        assert json.loads((out / "summary.json").read_text())["test"] == result["test"], name


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_load_in_a_fresh_process_from_the_checkpoint_alone(lstm_run, tmp_path):
    ckpt = tmp_path / "model.ckpt"  # away from its run folder, config and data
    ckpt.write_bytes(Path(lstm_run["best_model_path"]).read_bytes())
    code = f"import seqlab; print(seqlab.load({str(ckpt)!r}).predict(['the plot was not good'])[0]['label'])"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "negative", proc.stderr[-2000:]


@pytest.mark.parametrize(
    "args,message",
    [
        (["predict", "ckpt_path=missing.ckpt", "text=hi"], "missing.ckpt: no such checkpoint file"),
        (["predict", "ckpt_path=BAD", "text=hi"], "bad.ckpt: not a seqlab checkpoint"),
        (["predict", "ckpt_path=LSTM", "text= "], "input 0 is empty"),
        (["predict", "ckpt_path=LSTM", "input=EMPTY"], "no inputs in the file"),
        (["predict", "ckpt_pth=LSTM"], "unknown key 'ckpt_pth'; did you mean ckpt_path?"),
        (["eval", "ckpt_path=LSTM", "data.no_such_key=3"], "data.no_such_key: no such key"),
        (
            ["eval", "ckpt_path=LSTM", "data._target_=seqlab.data.tagging.TokenClassificationDataModule"],
            "holds a TextClassificationTask, which cannot be evaluated on TokenClassificationDataModule data",
        ),
    ],
)
def test_bad_input_is_one_clear_line(args, message, lstm_run, tmp_path, capsys):
    (tmp_path / "bad.ckpt").write_text("not a checkpoint")
    (tmp_path / "empty.txt").write_text("")
    fill = {
        "BAD": str(tmp_path / "bad.ckpt"),
        "LSTM": lstm_run["best_model_path"],
        "EMPTY": str(tmp_path / "empty.txt"),
        "missing.ckpt": str(tmp_path / "missing.ckpt"),
    }
    args = [
        a.split("=", 1)[0] + "=" + fill.get(a.split("=", 1)[1], a.split("=", 1)[1]) if "=" in a else a
        for a in args
    ]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(args)
    assert exit_info.value.code in (1, 2)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"seqlab {args[0]}: error:") and message in err[0], err


def test_train_false_without_ckpt_path_is_refused(tmp_path):
    with pytest.raises(ValueError, match="train=false without ckpt_path would evaluate untrained weights"):
        run(compose_cfg("+experiment=lstm", "train=false", *QUICK, output_dir=tmp_path))


def test_a_checkpoint_of_another_task_is_named_as_such(tagger_run, tmp_path):
    with pytest.raises(
        ValueError,
        match=r"holds a SequenceTaggingTask, but this run builds a TextClassificationTask: "
        r"the checkpoint belongs to another task",
    ):
        run(
            compose_cfg(
                "+experiment=lstm", f"ckpt_path={tagger_run['best_model_path']}", *QUICK, output_dir=tmp_path
            )
        )


def test_generate_with_a_stateless_causal_transformer_reads_the_growing_context():
    from seqlab.data.tokenizers import WordTokenizer
    from seqlab.models.encoders.transformer import TransformerEncoder
    from seqlab.predictor import Predictor

    tok = WordTokenizer.fit(["a b c d e f"])
    torch.manual_seed(0)
    enc = TransformerEncoder(
        tok.vocab_size, d_model=8, num_heads=2, num_layers=1, ffn_dim=16, max_length=4, causal=True
    )
    lm = LanguageModelTask(enc, tok.vocab_size, optimizer=torch.optim.Adam)
    seen = []
    enc.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    p = Predictor(lm, {"tokenizer": tok.state(), "hparams": {"add_eos": False}})
    text = p.generate("a b", n=6, seed=0)
    assert len(text.split()) == 8
    assert seen == [2, 3, 4, 4, 4, 4]  # the whole context each step, cut to max_length=4
