"""A trained seqlab model as a directory HF users know (``save_pretrained``), which seqlab reloads as well.

Written into the directory:
- the encoder in HF layout (``config.json`` with ``id2label`` / ``label2id``, ``model.safetensors``) and the
  tokenizer (``save_pretrained``). Where seqlab's head is exactly HF's (classification with ``pooler`` pooling:
  pooler -> dropout -> linear; tagging without CRF: dropout -> linear on every token) the model is saved as
  ``AutoModelForSequenceClassification`` / ``AutoModelForTokenClassification``, so
  ``AutoModelFor....from_pretrained(directory)`` gives seqlab's logits. Other heads save the bare ``AutoModel``.
- ``seqlab_model.json`` (the model config) and ``seqlab_head.pt`` (the weights outside the encoder), and
  ``seqlab_data.json`` (tokenizer and labels): `seqlab.checkpoint.load_task(directory)` rebuilds any head.
Encoders that are not HF models (RNN, CNN) get only the seqlab files, with all their weights.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

log = logging.getLogger(__name__)

MODEL_FILE, HEAD_FILE, DATA_FILE = "seqlab_model.json", "seqlab_head.pt", "seqlab_data.json"
ENCODER_PREFIX = "encoder."


def hf_head_class(task: nn.Module) -> str | None:
    """The ``AutoModelFor...`` class whose head is the same computation as `task`'s, or None."""
    from seqlab.tasks.classification import TextClassificationTask
    from seqlab.tasks.tagging import SequenceTaggingTask

    if isinstance(task, TextClassificationTask) and task.pooler.mode == "pooler":
        return "AutoModelForSequenceClassification"
    if isinstance(task, SequenceTaggingTask) and task.crf is None:
        return "AutoModelForTokenClassification"
    return None


def _as_hf_model(task: nn.Module, class_name: str, config) -> nn.Module | None:
    """`task` as an HF model with a head, when every weight of that model is one of `task`'s; else None."""
    import transformers

    hf = getattr(transformers, class_name).from_config(config)
    base = hf.base_model
    missing, unexpected = base.load_state_dict(task.encoder.model.state_dict(), strict=False)
    classifier = getattr(hf, "classifier", None)
    covered = {f"{hf.base_model_prefix}.{k}" for k in base.state_dict()} | {
        "classifier.weight",
        "classifier.bias",
    }
    if (
        missing
        or any(not k.startswith("pooler.") for k in unexpected)  # a tagger's AutoModel has no pooler: fine
        or not isinstance(classifier, nn.Linear)
        or classifier.weight.shape != task.head.weight.shape
        or set(hf.state_dict()) - covered
    ):
        log.info(
            "%s's head differs from seqlab's (%s): saving the bare encoder", class_name, config.model_type
        )
        return None
    classifier.load_state_dict(task.head.state_dict())
    return hf.eval()


def save_pretrained(
    task: nn.Module, datamodule: Any, directory: str | Path, model_cfg: DictConfig | dict
) -> str:
    """Write `task` (with the DataModule's tokenizer and labels) to `directory`; returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = (
        OmegaConf.to_container(model_cfg, resolve=True)
        if isinstance(model_cfg, DictConfig)
        else copy.deepcopy(model_cfg)
    )
    labels = [str(x) for x in datamodule.label_vocab.labels] if hasattr(datamodule, "label_vocab") else None
    if labels is not None:
        labels = labels[
            : task.head.out_features
        ]  # the predicted ones (a tagger's gold-only tags are not outputs)
    encoder_model = getattr(task.encoder, "model", None)
    is_hf = encoder_model is not None and hasattr(encoder_model, "save_pretrained")
    hf_class = None
    if is_hf:
        config = copy.deepcopy(encoder_model.config)
        if labels is not None:
            config.num_labels = len(labels)
            config.id2label = dict(enumerate(labels))
            config.label2id = {name: i for i, name in enumerate(labels)}
        config.architectures = None
        hf_class = hf_head_class(task)
        hf = _as_hf_model(task, hf_class, config) if hf_class else None
        if hf is None:
            hf_class = None
            encoder_model.config.id2label, encoder_model.config.label2id = config.id2label, config.label2id
            hf = encoder_model
        hf.save_pretrained(str(directory))
        if hasattr(datamodule.tokenizer, "save_pretrained"):
            datamodule.tokenizer.save_pretrained(directory)
        cfg["encoder"]["model_name_or_path"] = None  # the directory itself, filled in by load_task
    head = {k: v for k, v in task.state_dict().items() if not (is_hf and k.startswith(ENCODER_PREFIX))}
    torch.save(head, directory / HEAD_FILE)
    (directory / MODEL_FILE).write_text(
        json.dumps({"model": cfg, "hf_class": hf_class, "hf_encoder": is_hf}, indent=2) + "\n"
    )
    (directory / DATA_FILE).write_text(json.dumps(datamodule.state_dict()) + "\n")
    log.info(
        "model saved to %s (%s)",
        directory,
        hf_class or ("AutoModel + seqlab head" if is_hf else "seqlab layout"),
    )
    return str(directory)


def load_pretrained(directory: str | Path) -> nn.Module:
    """The seqlab task saved by `save_pretrained` in `directory`, in eval mode."""
    from hydra.utils import instantiate

    directory = Path(directory)
    if not (directory / MODEL_FILE).is_file():
        raise ValueError(
            f"{directory}: no {MODEL_FILE}; was it written by seqlab (save_pretrained=..., finetune)?"
        )
    meta = json.loads((directory / MODEL_FILE).read_text())
    cfg = meta["model"]
    if meta["hf_encoder"]:
        cfg["encoder"]["model_name_or_path"] = str(directory)
    task = instantiate(cfg)
    head = torch.load(directory / HEAD_FILE, map_location="cpu", weights_only=True)
    missing, unexpected = task.load_state_dict(head, strict=False)
    missing = [k for k in missing if not (meta["hf_encoder"] and k.startswith(ENCODER_PREFIX))]
    if missing or unexpected:
        raise ValueError(
            f"{directory}: {HEAD_FILE} does not fit the model (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return task.eval()


def data_state(directory: str | Path) -> dict[str, Any]:
    return json.loads((Path(directory) / DATA_FILE).read_text())
