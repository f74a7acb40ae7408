"""Checkpoints that rebuild themselves: the model's Hydra config travels inside as its hyper-parameters.

Lightning's default (`save_hyperparameters` on constructor arguments) would pickle the encoder module and the
optimizer partial, which ``torch.load(weights_only=True)`` (the default since torch 2.6) refuses to read.
So the task saves only plain values, and `seqlab.train` replaces them with the resolved ``model`` config:
plain data that `load_task` instantiates again. The DataModule adds its tokenizer and label names
(`state_dict`), so a checkpoint alone can encode new text and name its predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from lightning import LightningModule
from omegaconf import DictConfig, OmegaConf


def attach_config(model: LightningModule, model_cfg: DictConfig) -> None:
    """Make the resolved model config the module's hyper-parameters (saved in every checkpoint)."""
    model.save_hyperparameters(OmegaConf.to_container(model_cfg, resolve=True), logger=False)


def read(path: str | Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def load_task(path: str | Path) -> LightningModule:
    """The trained LightningModule of a seqlab checkpoint file, or of a directory written by
    `seqlab.export.hf.save_pretrained` (``finetune``'s output_dir), in eval mode."""
    if Path(path).is_dir():
        from seqlab.export.hf import load_pretrained

        return load_pretrained(path)
    ckpt = read(path)
    cfg = ckpt.get("hyper_parameters") or {}
    if "_target_" not in cfg:
        raise ValueError(f"{path}: no model config in the checkpoint's hyper_parameters; was it written by seqlab train?")
    model = instantiate(cfg)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def data_state(path: str | Path) -> dict[str, Any]:
    """What the DataModule saved in the checkpoint (`state_dict`: tokenizer, label names ...)."""
    if Path(path).is_dir():
        from seqlab.export.hf import data_state as exported_data_state

        return exported_data_state(path)
    ckpt = read(path)
    states = [v for k, v in ckpt.items() if k.endswith("DataModule") and isinstance(v, dict)]
    if len(states) != 1:
        raise ValueError(f"{path}: expected one DataModule state in the checkpoint, found {len(states)}")
    return states[0]
