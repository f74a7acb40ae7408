"""`seqlab finetune`: HF Trainer-style flags (run_glue / run_ner) as Hydra overrides of ``conf/train.yaml``.

It is another way to write overrides, not a second pipeline: the flags are parsed by HF's own
``HfArgumentParser`` and ``TrainingArguments`` (so ``--help`` and the validation are HF's), mapped onto config
keys through one table, `seqlab.finetune_flags.FLAGS`, and run by the same Hydra app as ``seqlab train``.
Afterwards the run's ``summary.json`` is rewritten as the result files the HF examples leave in ``--output_dir``.

A flag HF accepts but seqlab would not act on is an error when set to a non-default value, never silently
ignored; anything the table lacks can be set as a Hydra override after the flags (``key=value``), which wins.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, TrainingArguments
from transformers.hf_argparser import HfArg

from seqlab.cli import _train
from seqlab.export.hf_results import write_results
from seqlab.finetune_flags import (
    ACCEPTED_VALUES,
    FLAGS,
    HANDLED,
    HARMLESS,
    KEEP,
    REPORTERS,
    Args,
    file_format,
)

PROG = "seqlab finetune"


class FinetuneError(ValueError):
    """A one-line usage error: ``seqlab finetune: error: <message>`` and exit status 2, as argparse does."""


# ---- arguments ------------------------------------------------------------------------------------------
_SAMPLES = (
    "For debugging purposes or quicker training, truncate the number of {} examples to this value if set."
)


@dataclass
class ModelArguments:
    """What to fine-tune: run_glue's ModelArguments, plus seqlab's head and freezing options."""

    model_name_or_path: str = HfArg(
        help="Path to pretrained model or model identifier from huggingface.co/models"
    )
    tokenizer_name: str | None = HfArg(
        default=None, help="Pretrained tokenizer name or path if not the same as model_name"
    )
    pooling: str = HfArg(
        default="pooler",
        metadata={"choices": ["cls", "pooler", "mean", "attention"]},
        help="Classification: what the head reads; pooler (BERT's pooler: HF's head), cls, mean or attention "
        "(a learned weighting of the tokens)",
    )
    use_crf: bool = HfArg(default=False, help="Tagging: a CRF over the tag scores (no HF model export)")
    freeze_embeddings: bool = HfArg(default=False, help="Keep the embedding layer fixed")
    freeze_layers: int = HfArg(default=0, help="Also keep the first k transformer blocks fixed")


@dataclass
class DataArguments:
    """What to read and how to preprocess it: run_glue's and run_ner's DataTrainingArguments."""

    task: str = HfArg(
        default="auto",
        metadata={"choices": ["auto", "classification", "tagging"]},
        help="auto: tagging for CoNLL files (.conll, .txt) or a label column of lists, else classification",
    )
    dataset_name: str | None = HfArg(
        default=None, help="The name of the dataset to use (via the datasets library)."
    )
    dataset_config_name: str | None = HfArg(
        default=None, help="The configuration name of the dataset to use (via the datasets library)."
    )
    train_file: str | None = HfArg(
        default=None, help="A csv, tsv, json, jsonl, parquet or CoNLL (.conll, .txt) file of training data."
    )
    validation_file: str | None = HfArg(
        default=None, help="A file of the same format with the validation data (none: carved from train)."
    )
    test_file: str | None = HfArg(default=None, help="A file of the same format with the test data.")
    text_column_name: str | None = HfArg(
        default=None, help="The column name of the text (classification) or of the tokens (tagging)."
    )
    text_pair_column_name: str | None = HfArg(
        default=None, help="Classification of pairs: the column name of the second text."
    )
    label_column_name: str | None = HfArg(
        default=None, help="The column name of the label (classification) or of the tags (tagging)."
    )
    tag_scheme: str = HfArg(
        default="IOB2",
        metadata={"choices": ["IOB1", "IOB2", "IOBES", "none"]},
        help="Tagging: the scheme of the data's tags (IOB1 is read as IOB2); none for tags without spans",
    )
    max_seq_length: int | None = HfArg(
        default=None,
        help="The maximum total input sequence length after tokenization. Sequences longer than this will be "
        "truncated (default: the model's maximum).",
    )
    max_train_samples: int | None = HfArg(default=None, help=_SAMPLES.format("training"))
    max_eval_samples: int | None = HfArg(default=None, help=_SAMPLES.format("evaluation"))
    max_predict_samples: int | None = HfArg(default=None, help=_SAMPLES.format("prediction"))
    preprocessing_num_workers: int | None = HfArg(
        default=None, help="The number of processes to use for the preprocessing."
    )

    def __post_init__(self):
        """Reject bad combinations before anything is downloaded or read, as run_glue does."""
        if self.dataset_name is None and self.train_file is None:
            raise ValueError("Need either a dataset name (--dataset_name) or a training file (--train_file).")
        files = [f for f in (self.train_file, self.validation_file, self.test_file) if f is not None]
        formats = {file_format(f) for f in files}
        if len(formats) > 1:
            raise ValueError(f"the data files must share one format, got {sorted(formats)}")


# Flags HF users type from transformers 4 that transformers 5 dropped (with HF 4's help), and early stopping
# (HF's EarlyStoppingCallback). Built field by field: a name TrainingArguments has again is not declared twice
_EXTRA_FIELDS: tuple[tuple[str, Any, dataclasses.Field], ...] = (
    (
        "overwrite_output_dir",
        bool,
        HfArg(
            default=False,
            help="Overwrite the content of the output directory. Use this to continue training if "
            "output_dir points to a checkpoint directory.",
        ),
    ),
    (
        "warmup_ratio",
        float,
        HfArg(default=0.0, help="Linear warmup over warmup_ratio fraction of total steps."),
    ),
    (
        "group_by_length",
        bool,
        HfArg(
            default=False,
            help="Whether or not to group samples of roughly the same length together when batching.",
        ),
    ),
    (
        "early_stopping_patience",
        int | None,
        HfArg(
            default=None,
            help="Stop training when metric_for_best_model has not improved for this many evaluations.",
        ),
    ),
)
_TRAINING_FIELDS = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
ExtraArguments = dataclasses.make_dataclass(
    "ExtraArguments",
    [f for f in _EXTRA_FIELDS if f[0] not in _TRAINING_FIELDS],
    namespace={"__module__": __name__, "__doc__": "HF 4 flags transformers 5 dropped, and early stopping."},
)

EPILOG = (
    "Hydra overrides of conf/train.yaml (key=value, +key=value, ~key) may follow the flags; they are applied "
    "last and win. Of the TrainingArguments flags, seqlab finetune acts on: {mapped}. Any other set to a "
    "non-default value is an error. --output_dir receives the model in HF layout, checkpoints/, summary.json "
    "and HF's *_results.json."
)


def build_parser() -> HfArgumentParser:
    mapped = ", ".join(sorted({row.name for row in FLAGS} & _TRAINING_FIELDS))
    return HfArgumentParser(
        (ModelArguments, DataArguments, TrainingArguments, ExtraArguments),
        prog=PROG,
        epilog=EPILOG.format(mapped=mapped),
        allow_abbrev=False,  # strict: a shortened flag is an error with suggestions, not a guess
    )


# ---- parsing --------------------------------------------------------------------------------------------
_OVERRIDE = re.compile(r"(\+\+|\+)?[A-Za-z_][\w.@/-]*=.*|~[A-Za-z_][\w.@/-]*(=.*)?")


def is_override(arg: str) -> bool:
    return _OVERRIDE.fullmatch(arg) is not None


def split_overrides(argv: Sequence[str], parser: HfArgumentParser) -> tuple[list[str], list[str]]:
    """(flags, Hydra overrides), split before argparse, which would take ``key=value`` after a boolean flag
    for the flag's value. A token right after a flag that takes exactly one value is that value."""
    flags, overrides = [], []
    takes_value = False
    for arg in argv:
        if not takes_value and is_override(arg):
            overrides.append(arg)
            continue
        flags.append(arg)
        action = parser._option_string_actions.get(arg) if arg.startswith("--") else None
        takes_value = not takes_value and action is not None and action.nargs is None
    return flags, overrides


def _unknown(args: list[str], parser: HfArgumentParser) -> str:
    # --name only, not its --dashed-alias
    options = [s for action in parser._actions for s in action.option_strings if "-" not in s[2:]]
    flags = [arg for arg in args if arg.startswith("-")]
    if not flags:
        return f"unexpected argument {args[0]!r}: flags are --name value, Hydra overrides key=value"
    parts = []
    for flag in flags:
        close = difflib.get_close_matches(flag.split("=", 1)[0], options, n=3)
        parts.append(flag + (f" (did you mean {' or '.join(close)}?)" if close else ""))
    return f"unrecognized arguments: {'; '.join(parts)} (see seqlab finetune --help)"


def parse(argv: Sequence[str]) -> tuple[Args, list[str]]:
    """(the arguments after the dataclasses' validation, the Hydra overrides). `a.set_flags` names the flags
    given a value other than their default (a flag typed at its default is not "set")."""
    parser = build_parser()
    flags, overrides = split_overrides(argv, parser)
    raw, _ = parser.parse_known_args(flags)  # argparse's own errors (a bad value) and --help exit as usual
    try:
        *parsed, remaining = parser.parse_args_into_dataclasses(args=flags, return_remaining_strings=True)
    except ValueError as e:  # DataArguments' and TrainingArguments' __post_init__ checks (HF's messages)
        raise FinetuneError(" ".join(str(e).split())) from None
    overrides += [r for r in remaining if is_override(r)]
    remaining = [r for r in remaining if not is_override(r)]
    if remaining:
        raise FinetuneError(_unknown(remaining, parser))
    a = Args(**{f.name: getattr(obj, f.name) for obj in parsed for f in dataclasses.fields(obj)})
    # Defaults as argparse leaves them in the namespace: the first action's for a dest, strings via `type`.
    defaults: dict[str, Any] = {}
    for action in parser._actions:
        d = action.default
        if isinstance(d, str) and action.type is not None:
            d = action.type(d)
        defaults.setdefault(action.dest, d)
    a.set_flags = {dest for dest, value in vars(raw).items() if value != defaults[dest]}
    a.report_to_names = [n.strip() for n in str(raw.report_to or "none").split(",") if n.strip()]
    return a, overrides


# ---- checks and inference -------------------------------------------------------------------------------
def check(a: Args) -> None:
    """HF's rules that TrainingArguments leaves to the Trainer or the examples; what seqlab cannot do."""
    if not (a.do_train or a.do_eval or a.do_predict):
        raise FinetuneError("nothing to do: pass --do_train, --do_eval or --do_predict")
    if "output_dir" not in a.set_flags:
        raise FinetuneError("--output_dir is required")
    acted_on = {row.name for row in FLAGS} | HANDLED | HARMLESS
    ignored = [
        f"--{name}"
        for name in sorted(_TRAINING_FIELDS - acted_on)
        if name in a.set_flags and _plain(getattr(a, name)) not in ACCEPTED_VALUES.get(name, ())
    ]
    if ignored:
        verb = "is" if len(ignored) == 1 else "are"
        raise FinetuneError(
            f"{', '.join(ignored)} {verb} not supported by seqlab finetune (it would be ignored); seqlab "
            "maps the flags listed at the end of --help, and any config key as a Hydra override key=value"
        )
    unsupported = sorted(set(a.report_to_names) - REPORTERS)
    if unsupported:
        raise FinetuneError(
            f"--report_to {','.join(unsupported)}: not supported; seqlab logs to csv, and to "
            "tensorboard with --report_to tensorboard"
        )
    if a.max_steps <= 0 and a.num_train_epochs != int(a.num_train_epochs):
        raise FinetuneError(
            f"--num_train_epochs {a.num_train_epochs}: seqlab trains whole epochs; "
            "use --max_steps for a fraction of one"
        )
    for name, used in (
        ("logging_steps", True),
        ("eval_steps", a.eval_strategy == "steps"),
        ("save_steps", a.save_strategy == "steps"),
    ):
        if used and getattr(a, name) < 1:
            raise FinetuneError(
                f"--{name} {getattr(a, name)}: a ratio of the training steps is not "
                "supported; give a number of steps"
            )
    if a.warmup_steps >= 1 and a.warmup_steps != int(a.warmup_steps):
        raise FinetuneError(f"--warmup_steps {a.warmup_steps}: give a whole number of steps, or a ratio < 1")
    if a.warmup_ratio and a.warmup_steps:
        raise FinetuneError("--warmup_ratio and --warmup_steps: give one of them")
    if a.train_sampling_strategy not in ("random", "group_by_length"):
        raise FinetuneError(
            f"--train_sampling_strategy {a.train_sampling_strategy}: seqlab samples random "
            "or group_by_length batches"
        )
    if a.lr_scheduler_type in ("reduce_lr_on_plateau", "greedy"):
        raise FinetuneError(
            f"--lr_scheduler_type {_plain(a.lr_scheduler_type)}: not supported (it steps on "
            "a metric); the Hydra override model/scheduler=plateau is"
        )
    if a.save_strategy == "best" and a.metric_for_best_model is None:  # the Trainer's error
        raise FinetuneError("`args.metric_for_best_model` must be provided when using 'best' save_strategy.")
    if a.early_stopping_patience is not None and a.metric_for_best_model is None:
        raise FinetuneError(
            "--early_stopping_patience needs --metric_for_best_model (or "
            "--load_best_model_at_end, whose default metric is loss)"
        )
    if (a.save_strategy == "best" or a.early_stopping_patience is not None) and a.eval_strategy == "no":
        what = "--save_strategy best" if a.save_strategy == "best" else "--early_stopping_patience"
        raise FinetuneError(f"{what} needs evaluations: set --eval_strategy epoch or steps")
    for name in ("train_file", "validation_file", "test_file"):
        path = getattr(a, name)
        if path is not None and not Path(path).is_file():
            raise FinetuneError(f"--{name} {path}: no such file")
    if a.do_predict and a.train_file and not a.test_file:
        raise FinetuneError("--do_predict needs --test_file")


def check_output_dir(a: Args) -> None:
    """run_glue's rule: training into a non-empty output_dir resumes from its last checkpoint when there is
    one, else needs --overwrite_output_dir."""
    out = Path(a.output_dir)
    if not (a.do_train and out.is_dir() and any(out.iterdir())):
        return
    if a.overwrite_output_dir or a.resume_from_checkpoint:
        return
    last = out / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise FinetuneError(
            f"Output directory ({a.output_dir}) already exists and is not empty. "
            "Use --overwrite_output_dir to overcome."
        )
    _warn(
        f"checkpoint detected, resuming training at {last}. To avoid this behavior, change the "
        "--output_dir or add --overwrite_output_dir to train from scratch."
    )
    a.resume_from_checkpoint = str(last)


def checkpoint_file(path: str) -> str:
    """--resume_from_checkpoint: a .ckpt file, or a directory with last.ckpt or checkpoints/last.ckpt."""
    p = Path(path)
    for candidate in (p, p / "last.ckpt", p / "checkpoints" / "last.ckpt"):
        if candidate.is_file():
            return str(candidate)
    raise FinetuneError(f"--resume_from_checkpoint {path}: no such file, last.ckpt or checkpoints/last.ckpt")


def conll_columns(path: str) -> list[str] | None:
    """Names for a CoNLL file's columns: tokens first, tags last (CoNLL-2003's four: tokens pos chunk tags);
    None for the reader's default two."""
    with open(path, encoding="utf-8") as f:
        line = next((ln for ln in f if ln.strip() and not ln.startswith("-DOCSTART-")), "")
    n = len(line.split())
    if n < 2:
        raise FinetuneError(f"{path}: a CoNLL file needs a token and a tag column on each line")
    if n == 2:
        return None
    if n == 4:
        return ["tokens", "pos", "chunk", "tags"]
    return ["tokens", *(f"col{i}" for i in range(1, n - 1)), "tags"]


def first_row(a: Args) -> dict[str, Any]:
    """The first training example, to tell the task and the columns (a hub name: the network or the cache)."""
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar

    from seqlab.data.sources import HFSource

    files = {"train": a.train_file} if a.train_file else None
    source = HFSource(a.dataset_name or file_format(a.train_file), a.dataset_config_name, files)
    disable_progress_bar()  # a peek, not the run's loading
    try:
        splits = source.load()
    finally:
        enable_progress_bar()
    return (splits["train"] if "train" in splits else next(iter(splits.values())))[0]


def infer(a: Args) -> None:
    """Set `a.task` and the column names not given, as run_glue / run_ner would, from the training data."""
    a.conll_columns = None
    if a.train_file and file_format(a.train_file) == "conll":
        if a.task == "classification":
            raise FinetuneError("CoNLL files (.conll, .txt) are for tagging: drop --task classification")
        a.task, a.conll_columns = "tagging", conll_columns(a.train_file)
        return
    if a.task != "auto" and a.text_column_name is not None and a.label_column_name is not None:
        return
    try:
        row = first_row(a)
    except Exception as e:  # noqa: BLE001 - offline, a missing file, a bad format: all end here
        reason = f"{type(e).__name__}: {' '.join(str(e).split())}"
        if a.task == "auto":
            raise FinetuneError(
                f"could not read the training data to tell the task ({reason}); "
                "pass --task classification or --task tagging"
            ) from None
        _warn(f"could not read the training data to infer its columns ({reason}); using the config's")
        return
    if a.task == "auto":
        found = [c for c in ("label", "labels", "ner_tags", "tags") if c in row]
        label = a.label_column_name or (found[0] if found else None)
        a.task = "tagging" if isinstance(row.get(label or "tokens"), list) else "classification"
    infer_columns(a, row)


def infer_columns(a: Args, row: dict[str, Any]) -> None:
    """run_glue's sentence1/sentence2 pair or single text column, run_ner's ner_tags; else the config's
    defaults stay (text / label, tokens / tags)."""
    if a.task == "tagging":
        if a.label_column_name is None and "tags" not in row and "ner_tags" in row:
            a.label_column_name = "ner_tags"
        return
    if a.text_column_name is not None or "text" in row:
        return
    if "sentence1" in row and "sentence2" in row:
        a.text_column_name = "sentence1"
        a.text_pair_column_name = a.text_pair_column_name or "sentence2"
        return
    texts = [c for c, v in row.items() if c != (a.label_column_name or "label") and isinstance(v, str)]
    if "sentence" in row or len(texts) == 1:
        a.text_column_name = "sentence" if "sentence" in row else texts[0]


def check_task_flags(a: Args) -> None:
    only = {"classification": ("pooling", "text_pair_column_name"), "tagging": ("use_crf", "tag_scheme")}
    other = "tagging" if a.task == "classification" else "classification"
    for name in only[other]:
        if name in a.set_flags:
            raise FinetuneError(f"--{name} applies to {other}, and this is {a.task} (--task)")


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


# ---- overrides ------------------------------------------------------------------------------------------
_BARE = re.compile(r"[A-Za-z_/.][\w./-]*")


def render(value: Any) -> str:
    """`value` in Hydra's override grammar; a string is quoted unless it is plainly a name or a path."""
    value = _plain(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{render(v)}" for k, v in value.items()) + "}"
    s = str(value)
    if _BARE.fullmatch(s) and s.lower() not in ("true", "false", "null", "nan", "inf"):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def override_key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def overrides_for(a: Args) -> list[str]:
    """The table applied to `a`: one override per config key (rows sharing a key agree)."""
    values: dict[str, Any] = {}
    for row in FLAGS:
        v = row.value(a)
        if v is KEEP:
            continue
        if row.key in values and values[row.key] != v:
            raise AssertionError(f"rows for {row.key} disagree: {values[row.key]!r} != {v!r}")
        values[row.key] = v
    return [f"{key}={render(v)}" for key, v in values.items()]


def prepare(argv: Sequence[str]) -> tuple[Args, list[str]]:
    """``seqlab finetune`` argv -> (the arguments, the overrides ``seqlab train`` runs). The user's overrides
    come last and replace ours for the same key."""
    a, user = parse(argv)
    check(a)
    check_output_dir(a)
    if a.resume_from_checkpoint:
        a.resume_from_checkpoint = checkpoint_file(a.resume_from_checkpoint)
    elif not a.do_train:
        _warn(
            "evaluating without --do_train or --resume_from_checkpoint: the pretrained encoder with a "
            "freshly initialised head"
        )
    infer(a)
    check_task_flags(a)
    theirs = {override_key(o) for o in user}
    return a, [o for o in overrides_for(a) if override_key(o) not in theirs] + user


def to_overrides(argv: Sequence[str]) -> list[str]:
    return prepare(argv)[1]


def main(argv: Sequence[str]) -> None:
    """Parse, map, run ``seqlab train`` with the overrides, then write HF's result files into --output_dir."""
    try:
        a, overrides = prepare(argv)
    except FinetuneError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"{PROG}: python -m seqlab train {' '.join(shlex.quote(o) for o in overrides)}", file=sys.stderr)
    _train(overrides)
    output_dir = Path(a.output_dir)
    if (output_dir / "summary.json").is_file():
        for path in write_results(output_dir):
            print(f"{PROG}: wrote {path}", file=sys.stderr)
