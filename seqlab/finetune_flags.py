"""The table that maps `seqlab finetune`'s flags (HF's `TrainingArguments` and seqlab's model and data arguments)
onto config keys: one `Flag` row per (flag, key), the conversions that tie flags together, and the sets of flags
accepted without a row. `seqlab.finetune` parses the flags and turns this table into Hydra overrides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from omegaconf import OmegaConf

from seqlab.cli import CONF_DIR

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


def file_format(path: str) -> str:
    ext = path.rsplit(".", 1)[-1].lower() if "." in Path(path).name else ""
    if ext not in FILE_FORMATS:
        raise ValueError(f"{path}: unsupported file extension {ext!r}; use one of {', '.join(FILE_FORMATS)}")
    return FILE_FORMATS[ext]


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
