"""`run(cfg)`: data -> model -> trainer; fit, then test the best checkpoint. Only wiring lives here."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from seqlab.checkpoint import attach_config, data_state
from seqlab.utils import fill_from_data, instantiate_list, log_hyperparameters, print_summary

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train and test as `cfg` says. Returns the summary: best checkpoint, best monitored value, test metrics."""
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    if cfg.get("float32_matmul_precision"):
        torch.set_float32_matmul_precision(cfg.float32_matmul_precision)

    log.info("data: %s", cfg.data._target_)
    datamodule: L.LightningDataModule = instantiate(cfg.data)
    if cfg.get("ckpt_path"):  # resuming: encode with the checkpoint's vocabularies, not freshly fitted ones
        datamodule.load_state_dict(data_state(cfg.ckpt_path))
    datamodule.setup("fit")

    # vocab_size, pad_token_id, num_labels ... are `???` in the model config: the data decides them.
    model_cfg = fill_from_data(cfg.model, datamodule.dims)
    log.info("model: %s", model_cfg._target_)
    model: L.LightningModule = instantiate(model_cfg)
    attach_config(model, model_cfg)  # so a checkpoint rebuilds the model on its own
    check_monitor(cfg.get("monitor"), model)

    callbacks = instantiate_list(cfg.get("callbacks"))
    loggers = instantiate_list(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    log_hyperparameters(trainer, cfg, model)

    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    test_metrics: dict[str, float] = {}
    run_test = cfg.get("test", True)
    if run_test and hasattr(datamodule, "has_split") and not datamodule.has_split("test"):
        log.warning("the data has no test split: skipping the test (add data_files.test to test the best checkpoint)")
        run_test = False
    if run_test:
        ckpt = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not ckpt:
            log.warning("no best checkpoint (checkpointing off or no training): testing the current weights")
        results = trainer.test(model, datamodule=datamodule, ckpt_path=ckpt or None)
        test_metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}

    summary = summarize(trainer, cfg, test_metrics)
    print_summary(summary)
    if trainer.is_global_zero and summary["output_dir"]:
        path = Path(summary["output_dir"]) / "summary.json"
        path.write_text(json.dumps(summary, indent=2) + "\n")
        log.info("summary written to %s", path)
    return summary


def check_monitor(monitor: str | None, model: L.LightningModule) -> None:
    """Fail before training, not after the first epoch, when `monitor` names a metric the task never logs."""
    names = getattr(model, "metric_names", None)
    if monitor is None or names is None:
        return
    valid = [f"{stage}/{name}" for stage in ("val", "train") for name in names]
    if monitor not in valid:
        raise ValueError(f"monitor={monitor!r}: {type(model).__name__} logs {valid} (set monitor=... and mode=min|max)")


def summarize(trainer: L.Trainer, cfg: DictConfig, test_metrics: dict[str, float]) -> dict[str, Any]:
    ckpt_cb = trainer.checkpoint_callback
    best = ckpt_cb.best_model_score if ckpt_cb is not None and ckpt_cb.monitor else None
    # Without seqlab's callbacks Lightning adds a ModelCheckpoint that monitors nothing: report cfg.monitor then.
    monitor = (ckpt_cb.monitor if ckpt_cb is not None else None) or cfg.get("monitor")
    if best is None and monitor is not None:  # no checkpointing: fall back to the last logged value
        best = trainer.callback_metrics.get(monitor)
    return {
        "monitor": monitor,
        "best_score": float(best) if best is not None else math.nan,
        "best_model_path": ckpt_cb.best_model_path if ckpt_cb is not None else None,
        "test": test_metrics,
        "output_dir": OmegaConf.select(cfg, "paths.output_dir"),
    }
