"""`seqlab finetune`: HF Trainer-style flags (run_glue / run_ner) as Hydra overrides of ``conf/train.yaml``.

It is another way to write overrides, not a second pipeline: the flags are parsed by HF's own
``HfArgumentParser`` and ``TrainingArguments`` (so ``--help`` and the validation are HF's), mapped onto config
keys through one table, `FLAGS`, and run by the same Hydra app as ``seqlab train``. Afterwards the run's
``summary.json`` is rewritten as the result files the HF examples leave in ``--output_dir``.

A flag HF accepts but seqlab would not act on is an error when set to a non-default value, never silently
ignored; anything the table lacks can be set as a Hydra override after the flags (``key=value``), which wins.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from omegaconf import OmegaConf
from transformers import HfArgumentParser, TrainingArguments
from transformers.hf_argparser import HfArg

from seqlab.cli import CONF_DIR, _train
from seqlab.export.hf_results import write_results

PROG = "seqlab finetune"


class FinetuneError(ValueError):
    """A one-line usage error: ``seqlab finetune: error: <message>`` and exit status 2, as argparse does."""


# ---- arguments ------------------------------------------------------------------------------------------
# File extension -> HFSource format (`data.source.path`). CoNLL column files (.conll, .txt) are for tagging.
FILE_FORMATS = {
    "csv": "csv",
    "tsv": "tsv",
    "json": "json",
    "jsonl": "jsonl",
    "parquet": "parquet",
    "txt": "conll",
    "conll": "conll",
}
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


def file_format(path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower() if "." in Path(path).name else ""
    if ext not in FILE_FORMATS:
        raise ValueError(f"{path}: unsupported file extension {ext!r}; use one of {', '.join(FILE_FORMATS)}")
    return FILE_FORMATS[ext]


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


# ---- the flag table -------------------------------------------------------------------------------------
class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()  # a row's value meaning "no override: the config's default stays"
Args = SimpleNamespace  # every parsed field (validated), plus what `prepare` infers: task, conll_columns


@dataclass(frozen=True)
class Flag:
    """One flag -> one config key. `convert` computes the value from all the arguments `a` (the rules that tie
    flags together live there); without it the flag's own value is used, and None keeps the config default.
    A flag feeding several keys has several rows. `key` is a config path, or a Hydra key: ``+experiment``, a
    group (``logger``), ``hydra.*``, or ``++path``: a constructor argument the config file does not list."""

    name: str
    key: str
    convert: Callable[[Args], Any] | None = None

    def value(self, a: Args) -> Any:
        if self.convert is not None:
            return self.convert(a)
        v = getattr(a, self.name)
        return KEEP if v is None else v


# check_val_every_n_epoch for eval_strategy=no (not limit_val_batches=0: a later trainer.validate sees all)
NEVER = 2**31 - 1
METRICS = {"accuracy": "acc", "perplexity": "ppl"}  # HF metric -> seqlab's (a tagger's accuracy: token_acc)


def classification(fn: Callable[[Args], Any]) -> Callable[[Args], Any]:
    return lambda a: fn(a) if a.task == "classification" else KEEP


def tagging(fn: Callable[[Args], Any]) -> Callable[[Args], Any]:
    return lambda a: fn(a) if a.task == "tagging" else KEEP


def _field(name: str) -> Callable[[Args], Any]:
    return lambda a: KEEP if getattr(a, name) is None else getattr(a, name)


def _source_path(a: Args) -> Any:
    return a.dataset_name or (file_format(a.train_file) if a.train_file else KEEP)


def _monitor(a: Args) -> Any:
    """``val/<metric>``: what checkpoint selection and early stopping watch; null without evaluations."""
    if a.eval_strategy == "no" or a.metric_for_best_model is None:
        return None
    name = a.metric_for_best_model.removeprefix("eval_").removeprefix("val/")
    name = "token_acc" if a.task == "tagging" and name in ("accuracy", "acc") else METRICS.get(name, name)
    return f"val/{name}"


def _mode(a: Args) -> Any:
    if _monitor(a) is None:
        return KEEP
    return "max" if a.greater_is_better else "min"  # HF's default: False for a metric ending in "loss"


def _val(a: Args) -> dict[str, Any]:
    """Lightning's validation schedule for eval_strategy. HF counts eval_steps in optimizer steps, Lightning
    counts val_check_interval in batches."""
    if a.eval_strategy == "no":  # no validation while fitting (the sanity check would be one)
        return {"every_n_epoch": NEVER, "interval": KEEP, "sanity": 0}
    if a.eval_strategy == "epoch":
        return {"every_n_epoch": 1, "interval": KEEP, "sanity": KEEP}
    interval = int(a.eval_steps) * a.gradient_accumulation_steps
    return {"every_n_epoch": None, "interval": interval, "sanity": KEEP}


def _ckpt(a: Args) -> dict[str, Any]:
    """ModelCheckpoint triggers for save_strategy. A save must come after the evaluation it is ranked by, and
    Lightning's step trigger fires before that step's validation: with eval steps, saves go after each
    validation (a superset of HF's when save_steps is a multiple of eval_steps; save_top_k keeps the best)."""
    s, no_eval = a.save_strategy, a.eval_strategy == "no"
    if s == "no":
        return {"node": None, "enable": False, "epochs": KEEP, "steps": KEEP, "on_epoch_end": KEEP}
    keep = {"node": KEEP, "enable": KEEP}
    with_eval = s == "steps" and a.eval_strategy == "steps" and a.save_steps % a.eval_steps == 0
    if s in ("epoch", "best") or with_eval:
        return {**keep, "epochs": 1, "steps": KEEP, "on_epoch_end": s == "epoch" or no_eval}
    return {**keep, "epochs": KEEP, "steps": int(a.save_steps), "on_epoch_end": True if no_eval else KEEP}


def _save_top_k(a: Args) -> Any:
    return KEEP if a.save_strategy == "no" or a.save_total_limit is None else a.save_total_limit


def _keep_latest(value: str) -> Callable[[Args], Any]:
    """save_total_limit N without a metric: the N latest checkpoints (Lightning's recipe: monitor=step)."""

    def convert(a: Args) -> Any:
        limited = a.save_strategy != "no" and a.save_total_limit is not None and a.save_total_limit > 1
        return value if limited and _monitor(a) is None else KEEP

    return convert


def _early_stopping(a: Args) -> Any:
    """The finetune experiments drop the callback (null): bring conf/callbacks/early_stopping.yaml's back."""
    if a.early_stopping_patience is None:
        return KEEP
    node = OmegaConf.load(CONF_DIR / "callbacks" / "early_stopping.yaml").early_stopping
    node.patience = a.early_stopping_patience
    return OmegaConf.to_container(node, resolve=False)


def _warmup_ratio(a: Args) -> Any:
    if 0 < a.warmup_steps < 1:  # transformers 5: a fractional warmup_steps is a ratio
        return a.warmup_steps
    return a.warmup_ratio or KEEP


def _report_to(a: Args) -> Any:
    """csv always; tensorboard too when named, or with ``all`` when installed (HF: installed integrations)."""
    from importlib.util import find_spec

    installed = find_spec("tensorboard") is not None or find_spec("tensorboardX") is not None
    wanted = "tensorboard" in a.report_to_names or ("all" in a.report_to_names and installed)
    return "many" if wanted else "csv"


def _reader_kwargs(a: Args) -> Any:
    return {"columns": a.conll_columns} if a.conll_columns else KEEP


def _max_epochs(a: Args) -> int:
    return -1 if a.max_steps > 0 else int(a.num_train_epochs)  # HF: max_steps overrides num_train_epochs


def _warmup_steps(a: Args) -> Any:
    return int(a.warmup_steps) if a.warmup_steps >= 1 else KEEP


def _ckpt_on(name: str) -> Callable[[Args], Any]:
    return lambda a: _ckpt(a)[name]


def _betas(a: Args) -> list[float]:
    return [a.adam_beta1, a.adam_beta2]


def _pin_memory(a: Args) -> bool:
    """HF pins when there is a device to copy to; on a CPU-only machine pinning only warns."""
    import torch

    return bool(a.dataloader_pin_memory) and torch.cuda.is_available()


def _group_by_length(a: Args) -> bool:
    """HF's flags keep HF's meaning: random batches unless --group_by_length (``seqlab train`` buckets by default)."""
    return a.group_by_length or a.train_sampling_strategy == "group_by_length"


def _checkpointing(a: Args) -> bool:
    return bool(a.activation_checkpointing)  # transformers 5's name; gradient_checkpointing is its alias


FLAGS: tuple[Flag, ...] = (
    # what to fine-tune
    Flag("task", "+experiment", lambda a: f"finetune_{a.task}"),
    Flag("model_name_or_path", "model.encoder.model_name_or_path"),
    Flag("tokenizer_name", "data.tokenizer.name_or_path"),
    Flag("pooling", "model.pooling", classification(_field("pooling"))),
    Flag("use_crf", "model.use_crf", tagging(_field("use_crf"))),
    Flag("freeze_embeddings", "model.encoder.freeze_embeddings"),
    Flag("freeze_layers", "model.encoder.freeze_layers"),
    Flag("gradient_checkpointing", "model.encoder.gradient_checkpointing", _checkpointing),
    Flag("activation_checkpointing", "model.encoder.gradient_checkpointing", _checkpointing),
    # data
    Flag("dataset_name", "data.source.path", _source_path),
    Flag("dataset_config_name", "data.source.name"),
    Flag("train_file", "data.source.path", _source_path),
    Flag("train_file", "data.source.data_files.train"),
    Flag("train_file", "data.source.reader_kwargs", _reader_kwargs),
    Flag("validation_file", "data.source.data_files.validation"),
    Flag("test_file", "data.source.data_files.test"),
    Flag("text_column_name", "data.text_column", classification(_field("text_column_name"))),
    Flag("text_column_name", "data.tokens_column", tagging(_field("text_column_name"))),  # run_ner's name
    Flag("text_pair_column_name", "data.text_pair_column", classification(_field("text_pair_column_name"))),
    Flag("label_column_name", "data.label_column", classification(_field("label_column_name"))),
    Flag("label_column_name", "data.tags_column", tagging(_field("label_column_name"))),
    Flag("tag_scheme", "data.tag_scheme", tagging(lambda a: {"none": None}.get(a.tag_scheme, a.tag_scheme))),
    Flag("max_seq_length", "data.max_seq_length"),
    Flag("max_train_samples", "data.max_train_samples"),
    Flag("max_eval_samples", "data.max_eval_samples"),
    Flag("max_predict_samples", "data.max_predict_samples"),
    Flag("preprocessing_num_workers", "data.num_proc"),
    Flag("per_device_train_batch_size", "data.batch_size"),
    Flag("per_device_eval_batch_size", "data.eval_batch_size"),
    Flag("dataloader_num_workers", "data.num_workers"),
    Flag("dataloader_pin_memory", "data.pin_memory", _pin_memory),
    Flag("dataloader_persistent_workers", "data.persistent_workers"),
    Flag("dataloader_drop_last", "data.drop_last"),
    Flag("group_by_length", "data.bucketing", _group_by_length),
    Flag("train_sampling_strategy", "data.bucketing", _group_by_length),
    # optimisation
    Flag("learning_rate", "model.optimizer.lr"),
    Flag("weight_decay", "model.optimizer.weight_decay"),
    Flag("adam_beta1", "model.optimizer.betas", _betas),
    Flag("adam_beta2", "model.optimizer.betas", _betas),
    Flag("adam_epsilon", "model.optimizer.eps"),
    Flag("max_grad_norm", "trainer.gradient_clip_val", lambda a: a.max_grad_norm or None),
    Flag("gradient_accumulation_steps", "trainer.accumulate_grad_batches"),
    Flag("num_train_epochs", "trainer.max_epochs", _max_epochs),
    Flag("max_steps", "trainer.max_steps"),
    Flag("lr_scheduler_type", "model.scheduler.name"),
    Flag("warmup_ratio", "model.scheduler.warmup_ratio", _warmup_ratio),
    Flag("warmup_steps", "model.scheduler.warmup_ratio", _warmup_ratio),
    Flag("warmup_steps", "model.scheduler.warmup_steps", _warmup_steps),
    Flag("logging_steps", "trainer.log_every_n_steps", lambda a: int(a.logging_steps)),
    # evaluation and checkpoints
    Flag("eval_strategy", "trainer.check_val_every_n_epoch", lambda a: _val(a)["every_n_epoch"]),
    Flag("eval_strategy", "trainer.val_check_interval", lambda a: _val(a)["interval"]),
    Flag("eval_strategy", "trainer.num_sanity_val_steps", lambda a: _val(a)["sanity"]),
    Flag("eval_steps", "trainer.val_check_interval", lambda a: _val(a)["interval"]),
    Flag("metric_for_best_model", "monitor", _monitor),
    Flag("greater_is_better", "mode", _mode),
    Flag("load_best_model_at_end", "eval_ckpt", lambda a: "best" if a.load_best_model_at_end else "last"),
    Flag("early_stopping_patience", "callbacks.early_stopping", _early_stopping),
    Flag("save_strategy", "callbacks.model_checkpoint", _ckpt_on("node")),
    Flag("save_strategy", "callbacks.last_checkpoint", _ckpt_on("node")),
    Flag("save_strategy", "trainer.enable_checkpointing", _ckpt_on("enable")),
    Flag("save_strategy", "callbacks.model_checkpoint.every_n_epochs", _ckpt_on("epochs")),
    Flag("save_strategy", "callbacks.model_checkpoint.every_n_train_steps", _ckpt_on("steps")),
    Flag("save_strategy", "callbacks.model_checkpoint.save_on_train_epoch_end", _ckpt_on("on_epoch_end")),
    Flag("save_steps", "callbacks.model_checkpoint.every_n_train_steps", _ckpt_on("steps")),
    Flag("save_total_limit", "callbacks.model_checkpoint.save_top_k", _save_top_k),
    Flag("save_total_limit", "callbacks.model_checkpoint.monitor", _keep_latest("step")),
    Flag("save_total_limit", "callbacks.model_checkpoint.mode", _keep_latest("max")),
    # the run
    Flag("do_train", "train"),
    Flag("do_eval", "validate"),
    Flag("do_predict", "test"),
    Flag("do_predict", "predict"),
    Flag("output_dir", "hydra.run.dir"),
    Flag("output_dir", "save_pretrained", lambda a: a.output_dir if a.do_train else KEEP),  # HF's save_model
    Flag("resume_from_checkpoint", "ckpt_path"),
    Flag("seed", "seed"),
    Flag("full_determinism", "trainer.deterministic"),
    Flag("fp16", "trainer.precision", lambda a: "16-mixed" if a.fp16 else KEEP),
    Flag("bf16", "trainer.precision", lambda a: "bf16-mixed" if a.bf16 else KEEP),
    Flag("use_cpu", "trainer.accelerator", lambda a: "cpu" if a.use_cpu else KEEP),
    Flag("report_to", "logger", _report_to),
    Flag("disable_tqdm", "trainer.enable_progress_bar", lambda a: False if a.disable_tqdm else KEEP),
    Flag("disable_tqdm", "callbacks.rich_progress_bar", lambda a: None if a.disable_tqdm else KEEP),
    Flag("run_name", "task_name"),
)
HANDLED = {"overwrite_output_dir"}  # acted on outside the table: the output directory check
HARMLESS = {"log_level", "log_level_replica", "logging_dir"}  # only HF's own logging: accepted at any value
ACCEPTED_VALUES = {"optim": {"adamw_torch", "adamw_torch_fused"}}  # seqlab's torch AdamW: the same algorithm
REPORTERS = {"none", "tensorboard", "all"}  # csv is always written


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
