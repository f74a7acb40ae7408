"""Small helpers for `seqlab.train`: filling data-derived sizes, instantiating lists, the closing summary."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from lightning import LightningModule, Trainer
from omegaconf import DictConfig, ListConfig, OmegaConf

log = logging.getLogger(__name__)


def fill_from_data(cfg: DictConfig, dims: Mapping[str, Any], prefix: str = "model") -> DictConfig:
    """A copy of `cfg` whose ``???`` values are taken from `dims` by key name, at any depth.

    Keys set explicitly are left alone. Any ``???`` the data cannot fill is an error naming the key.
    """
    # A detached copy, resolved first: interpolations such as ${trainer.max_epochs} point outside `cfg`.
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))

    def walk(node, path):
        if isinstance(node, DictConfig):
            for key in node.keys():
                if OmegaConf.is_missing(node, key):
                    if key in dims:
                        node[key] = dims[key]
                else:
                    walk(node[key], f"{path}.{key}")
        elif isinstance(node, ListConfig):
            for i, item in enumerate(node):
                walk(item, f"{path}[{i}]")

    walk(cfg, prefix)
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ValueError(
            f"{', '.join(f'{prefix}.{k}' for k in missing)} must be set: the data provides only {sorted(dims)}"
        )
    return cfg


def instantiate_list(cfg: DictConfig | None) -> list[Any]:
    """Every ``_target_`` entry of a group such as ``callbacks`` or ``logger`` (null entries are skipped)."""
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"expected a mapping of name -> config with _target_, got {type(cfg).__name__}")
    out = []
    for name, conf in cfg.items():
        if conf is None:
            continue
        if not isinstance(conf, DictConfig) or "_target_" not in conf:
            raise ValueError(f"'{name}' has no _target_: each entry must name the class it builds")
        out.append(instantiate(conf))
    return out


def log_hyperparameters(trainer: Trainer, cfg: DictConfig, model: LightningModule) -> None:
    """Send the resolved config and parameter counts to every logger (the encoder module itself is not logged)."""
    if not trainer.loggers:
        return
    params = sum(p.numel() for p in model.parameters())
    hparams = {
        "cfg": OmegaConf.to_container(cfg, resolve=True),
        "model/params_total": params,
        "model/params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    for lg in trainer.loggers:
        lg.log_hyperparams(hparams)


def print_summary(summary: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="seqlab run summary", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("best checkpoint", str(summary.get("best_model_path") or "-"))
    table.add_row(f"best {summary.get('monitor')}", f"{summary.get('best_score'):.4f}")
    for k, v in sorted(summary.get("test", {}).items()):
        table.add_row(k, f"{v:.4f}")
    table.add_row("output dir", str(summary.get("output_dir")))
    Console().print(table)
