"""HFSource: local formats through `datasets`, CoNLL through seqlab's reader, errors naming the file or key."""

from __future__ import annotations

import pytest
from datasets import Dataset

from seqlab.data.sources import HFSource


def test_csv_tsv_json_parquet_text(tmp_path):
    (tmp_path / "a.csv").write_text('text,label\n"hello, world",1\nbye,0\n')
    (tmp_path / "a.tsv").write_text(
        'sentence\tlabel\nsays "hi there\t1\nno quotes\t0\n'
    )  # a stray quote stays literal
    (tmp_path / "a.jsonl").write_text('{"text": "x y", "label": 1}\n{"text": "z", "label": 0}\n')
    Dataset.from_dict({"text": ["p q", "r"], "label": [1, 0]}).to_parquet(tmp_path / "a.parquet")
    (tmp_path / "a.txt").write_text("line one\n\nline three\n")
    assert HFSource("csv", data_files=str(tmp_path / "a.csv")).load()["train"]["text"][:] == [
        "hello, world",
        "bye",
    ]
    tsv = HFSource("tsv", data_files={"train": str(tmp_path / "a.tsv")}).load()["train"]
    assert tsv["sentence"][:] == ['says "hi there', "no quotes"] and tsv["label"][:] == [1, 0]
    for fmt in ("json", "jsonl"):
        assert HFSource(fmt, data_files=str(tmp_path / "a.jsonl")).load()["train"]["text"][:] == ["x y", "z"]
    assert HFSource("parquet", data_files=str(tmp_path / "a.parquet")).load()["train"]["label"][:] == [1, 0]
    assert HFSource("text", data_files=str(tmp_path / "a.txt")).load()["train"]["text"][:] == [
        "line one",
        "",
        "line three",
    ]


def test_conll_columns_docstart_and_split_names(tmp_path):
    (tmp_path / "x.conll").write_text(
        "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\n\n\nPeter NNP I-NP I-PER\n"
    )
    src = HFSource(
        "conll",
        data_files={"dev": str(tmp_path / "x.conll")},
        split_names={"validation": "dev"},
        reader_kwargs={"columns": ["tokens", "pos", "chunk", "tags"]},
    )
    ds = src.load()
    assert list(ds) == ["validation"]
    assert ds["validation"]["tokens"][:] == [["EU", "rejects"], ["Peter"]]
    assert ds["validation"]["tags"][:] == [["I-ORG", "O"], ["I-PER"]]


def test_conll_file_changed_in_place_is_read_again(tmp_path):
    f = tmp_path / "y.conll"
    f.write_text("a O\n")
    assert HFSource("conll", data_files=str(f)).load()["train"]["tokens"][:] == [["a"]]
    f.write_text("a O\nb B-X\n\nc O\n")
    assert HFSource("conll", data_files=str(f)).load()["train"]["tokens"][:] == [["a", "b"], ["c"]]


def test_conll_wrong_column_count_names_file_and_line(tmp_path):
    f = tmp_path / "bad.conll"
    f.write_text("EU NNP I-NP I-ORG\n\nrejects VBZ O\n")
    with pytest.raises(ValueError, match=r"bad.conll:3: expected 4 columns"):
        HFSource(
            "conll", data_files=str(f), reader_kwargs={"columns": ["tokens", "pos", "chunk", "tags"]}
        ).load()


def test_missing_file_and_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_files.validation: no such file: .*nope.tsv"):
        HFSource("tsv", data_files={"train": __file__, "validation": str(tmp_path / "nope.tsv")}).load()
    with pytest.raises(ValueError, match="set data_files"):
        HFSource("csv")
    (tmp_path / "z.conll").write_text("a O\n")
    with pytest.raises(
        ValueError, match=r"split_names.validation='dev' but the source has splits \['train'\]"
    ):
        HFSource("conll", data_files=str(tmp_path / "z.conll"), split_names={"validation": "dev"}).load()


def test_hub_names_go_to_load_dataset(monkeypatch):
    calls = {}

    def fake_load_dataset(path, name=None, **kw):
        calls.update(path=path, name=name, **kw)
        from datasets import DatasetDict

        return DatasetDict(
            {
                "train": Dataset.from_dict({"sentence": ["a"], "label": [0]}),
                "validation": Dataset.from_dict({"sentence": ["b"], "label": [1]}),
            }
        )

    monkeypatch.setattr("seqlab.data.sources.load_dataset", fake_load_dataset)
    ds = HFSource("nyu-mll/glue", name="sst2", reader_kwargs={"revision": "main"}).load()
    assert calls["path"] == "nyu-mll/glue" and calls["name"] == "sst2" and calls["revision"] == "main"
    assert sorted(ds) == ["train", "validation"]


@pytest.mark.parametrize(
    "fmt,content,message",
    [
        ("csv", b"", r"data_files.train: .*train.csv is empty \(0 bytes\)"),
        ("csv", b"text,label\n", r"data_files.train: .*train.csv holds no rows \(a header only\?\)"),
        (
            "csv",
            "text,label\ncaf\u00e9 au lait,1\n".encode("latin-1"),
            r"train.csv:2: not valid utf-8 .*data.source.encoding",
        ),
        (
            "conll",
            "Jos\u00e9 B-PER\n".encode("latin-1"),
            r"train.conll:1: not valid utf-8 .*data.source.encoding \(e.g. latin-1\)",
        ),
        (
            "json",
            b'{"text": "a", "label": 1}\n{"text": broken\n',
            r"data_files.train: could not read .*train.json as json",
        ),
    ],
)
def test_unreadable_files_are_named(fmt, content, message, tmp_path):
    path = tmp_path / f"train.{fmt}"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        HFSource(fmt, data_files={"train": str(path)}).load()


def test_encoding_option_reads_latin1_files(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes("text,label\ncaf\u00e9 au lait,1\n".encode("latin-1"))
    ds = HFSource("csv", data_files={"train": str(path)}, encoding="latin-1").load()["train"]
    assert ds[0]["text"] == "caf\u00e9 au lait"
    conll = tmp_path / "train.conll"
    conll.write_bytes("Jos\u00e9 B-PER\n".encode("latin-1"))
    assert HFSource("conll", data_files={"train": str(conll)}, encoding="latin-1").load()["train"][0][
        "tokens"
    ] == ["Jos\u00e9"]
