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
from lightning import Callback, LightningModule
from omegaconf import DictConfig, OmegaConf


def attach_config(model: LightningModule, model_cfg: DictConfig) -> None:
    """Make the resolved model config the module's hyper-parameters (saved in every checkpoint)."""
    model.save_hyperparameters(OmegaConf.to_container(model_cfg, resolve=True), logger=False)


def read(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dict, read with ``weights_only=True``; a missing file or a file that is not a checkpoint
    is a one-line error (not torch's advice to unpickle arbitrary code)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (not a zip / pickle) ...
        raise ValueError(f"{path}: not a seqlab checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f"{path}: not a seqlab checkpoint (no state_dict)")
    return ckpt


class SelfRebuilding:
    """Mixin for seqlab tasks: ``TaskClass.load_from_checkpoint(path)`` (Lightning's usual way) rebuilds the task
    from the model config inside the checkpoint. Lightning's own version would call ``TaskClass(**hparams)``
    with the config's nested dicts (the encoder as a dict), which cannot work."""

    @classmethod
    def load_from_checkpoint(
        cls, checkpoint_path, map_location=None, hparams_file=None, strict=None, **kwargs
    ):
        if hparams_file is not None or kwargs:
            raise ValueError(
                "seqlab checkpoints carry their own config: load_from_checkpoint takes only the path"
            )
        task = load_task(checkpoint_path)
        if not isinstance(task, cls):
            raise ValueError(f"{checkpoint_path} holds a {type(task).__name__}, not a {cls.__name__}")
        return task.to(map_location) if isinstance(map_location, str | torch.device) else task


def load_task(path: str | Path) -> LightningModule:
    """The trained LightningModule of a seqlab checkpoint file, or of a directory written by
    `seqlab.export.hf.save_pretrained` (``finetune``'s output_dir), in eval mode."""
    if Path(path).is_dir():
        from seqlab.export.hf import load_pretrained

        return load_pretrained(path)
    ckpt = read(path)
    cfg = ckpt.get("hyper_parameters") or {}
    if "_target_" not in cfg:
        raise ValueError(
            f"{path}: no model config in the checkpoint's hyper_parameters; was it written by seqlab train?"
        )
    model = instantiate(cfg)
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


class SaveDataConfig(Callback):
    """Adds the run's resolved data config to every checkpoint (``checkpoint["seqlab"]["data"]``), so that
    ``seqlab eval`` rebuilds the DataModule the checkpoint was trained with."""

    def __init__(self, data_cfg: DictConfig):
        self.data_cfg = OmegaConf.to_container(data_cfg, resolve=True)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint["seqlab"] = {"data": self.data_cfg}


def data_config(path: str | Path) -> dict[str, Any]:
    """The data config a checkpoint was trained with (see `SaveDataConfig`)."""
    cfg = read(path).get("seqlab", {}).get("data")
    if cfg is None:
        raise ValueError(
            f"{path}: the checkpoint has no data config (written by an older seqlab); evaluate it with "
            "`seqlab train <the run's overrides> train=false ckpt_path=...`"
        )
    return cfg


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
