"""`run(cfg)`: data -> model -> trainer; fit, then validate / test / predict / export the chosen weights
(``eval_ckpt``: the best checkpoint, or the last weights). Only wiring lives here; every command calls it."""

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

from seqlab.checkpoint import SaveDataConfig, attach_config, data_state
from seqlab.checkpoint import read as read_checkpoint
from seqlab.utils import fill_from_data, instantiate_list, log_hyperparameters, print_summary

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train and evaluate as `cfg` says. Returns the summary (also ``<output_dir>/summary.json``): best checkpoint,
    best monitored value, the weights evaluated, train / val / test metrics, predictions file, export directory."""
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    if cfg.get("float32_matmul_precision"):
        torch.set_float32_matmul_precision(cfg.float32_matmul_precision)

    log.info("data: %s", cfg.data._target_)
    datamodule: L.LightningDataModule = instantiate(cfg.data)
    if cfg.get("ckpt_path"):  # resuming: encode with the checkpoint's vocabularies, not freshly fitted ones
        check_checkpoint_task(cfg.ckpt_path, cfg.model._target_)
        datamodule.load_state_dict(data_state(cfg.ckpt_path))
    datamodule.setup("fit")

    # vocab_size, pad_token_id, num_labels ... are `???` in the model config: the data decides them.
    model_cfg = fill_from_data(cfg.model, datamodule.dims)
    log.info("model: %s", model_cfg._target_)
    model: L.LightningModule = instantiate(model_cfg)
    attach_config(model, model_cfg)  # so a checkpoint rebuilds the model on its own
    check_monitor(cfg.get("monitor"), model)

    callbacks = [*instantiate_list(cfg.get("callbacks")), SaveDataConfig(cfg.data)]
    loggers = instantiate_list(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    log_hyperparameters(trainer, cfg, model)

    train_metrics: dict[str, float] = {}
    if cfg.get("train", True):
        try:
            trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        except SystemExit as e:
            interrupted = Interrupted.from_exit(e, trainer)
            if interrupted is None:
                raise
            raise interrupted from e
        # read now: validate / test reset the trainer's metrics
        train_metrics = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("train/") and v.numel() == 1
        }
        train_metrics.update(epoch=trainer.current_epoch, global_step=trainer.global_step)
    weights = load_eval_weights(model, trainer, cfg)
    results = evaluate(cfg, trainer, model, datamodule, model_cfg)

    summary = summarize(trainer, cfg, datamodule, weights, {"train": train_metrics, **results})
    print_summary(summary)
    if trainer.is_global_zero and summary["output_dir"]:
        path = Path(summary["output_dir"]) / "summary.json"
        path.write_text(json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n")
        log.info("summary written to %s", path)
        if cfg.get("train", True):
            draw_run_curves(Path(summary["output_dir"]))
    return summary


class Interrupted(SystemExit):
    """Fitting stopped by SIGTERM or SIGINT: exit status 128 + the signal number (143, 130), not Lightning's 0
    (its `SIGTERMException` is a SystemExit without a code) or 1 (Ctrl+C), so that a scheduler sees the failure.
    Raised before any test or summary. `epoch` / `step` say where training stopped."""

    def __init__(self, signal_name: str, code: int, trainer: L.Trainer):
        super().__init__(code)
        self.signal_name, self.epoch, self.step = signal_name, trainer.current_epoch, trainer.global_step
        self.is_global_zero = trainer.is_global_zero

    @classmethod
    def from_exit(cls, e: SystemExit, trainer: L.Trainer) -> Interrupted | None:
        """`e` as an `Interrupted` when Lightning raised it for a signal; None for any other exit."""
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(e, SIGTERMException):
            return cls("SIGTERM", 143, trainer)
        if isinstance(e.__context__, KeyboardInterrupt):  # Lightning's handler calls sys.exit(1)
            return cls("SIGINT", 130, trainer)
        return None


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities as None: strict JSON parsers reject bare NaN / Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def draw_run_curves(output_dir: Path) -> None:
    """curves.png next to summary.json. A plot is a convenience: no CSV logger means no plot, a failure only warns."""
    if not (output_dir / "csv" / "metrics.csv").is_file():
        return
    try:
        from seqlab.plot import draw_curves

        log.info("learning curves: %s", draw_curves([output_dir]))
    except Exception as e:  # noqa: BLE001
        log.warning("could not draw learning curves: %s", e)


def load_eval_weights(model: L.LightningModule, trainer: L.Trainer, cfg: DictConfig) -> str | None:
    """Put the weights that validate / test / predict / save_pretrained use into `model`; return their file.

    After training, ``eval_ckpt=best`` is the best checkpoint by `monitor` and ``last`` the weights training ended
    with. Without training, ``ckpt_path`` (when given) is loaded: evaluating a checkpoint never runs on fresh weights.
    """
    choice = cfg.get("eval_ckpt", "best")
    if choice not in ("best", "last"):
        raise ValueError(f"eval_ckpt={choice!r}: choose best or last")
    if not cfg.get("train", True):
        path = cfg.get("ckpt_path")
        if not path:
            raise ValueError(
                "train=false without ckpt_path would evaluate untrained weights: give ckpt_path=<a checkpoint> "
                "(or use `seqlab eval ckpt_path=...`)"
            )
    elif choice == "last":
        return None  # the weights in memory are the last ones
    else:
        ckpt_cb = trainer.checkpoint_callback
        path = ckpt_cb.best_model_path if ckpt_cb is not None else ""
        if not path:
            log.warning(
                "no best checkpoint (checkpointing off, or nothing monitored): using the last weights"
            )
            return None
    model.load_state_dict(read_checkpoint(path)["state_dict"])
    log.info("evaluating the weights of %s", path)
    return str(path)


def evaluate(
    cfg: DictConfig, trainer: L.Trainer, model: L.LightningModule, datamodule, model_cfg: DictConfig
) -> dict[str, Any]:
    """What the config asks of the loaded weights: validation and test metrics, test predictions, an export."""
    results: dict[str, Any] = {"val": {}, "test": {}, "predictions": None, "export_dir": None}
    if cfg.get("validate", False):
        out = trainer.validate(model, datamodule=datamodule)
        results["val"] = {k: float(v) for k, v in (out[0] if out else {}).items()}
    run_test = cfg.get("test", True) or cfg.get("predict", False)
    if run_test and hasattr(datamodule, "has_split") and not datamodule.has_split("test"):
        log.warning("the data has no test split: skipping test and predict (add data_files.test)")
        run_test = False
    if run_test and cfg.get("test", True):
        out = trainer.test(model, datamodule=datamodule)
        results["test"] = {k: float(v) for k, v in (out[0] if out else {}).items()}
    if run_test and cfg.get("predict", False):
        results["predictions"] = write_predictions(
            trainer, model, datamodule, OmegaConf.select(cfg, "paths.output_dir")
        )
    if cfg.get("save_pretrained") and trainer.is_global_zero:
        from seqlab.export.hf import save_pretrained

        results["export_dir"] = save_pretrained(model, datamodule, cfg.save_pretrained, model_cfg)
    return results


def write_predictions(
    trainer: L.Trainer, model: L.LightningModule, datamodule, output_dir: str | None
) -> str | None:
    """The test split's predictions, one JSON record a row in input order, to ``<output_dir>/predictions.jsonl``."""
    outputs = trainer.predict(model, dataloaders=datamodule.test_dataloader())
    if not trainer.is_global_zero or not output_dir or not hasattr(datamodule, "predictions"):
        return None
    path = Path(output_dir) / "predictions.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for row in datamodule.predictions(outputs):
            f.write(json.dumps(row) + "\n")
    log.info("predictions written to %s", path)
    return str(path)


def check_checkpoint_task(ckpt_path: str, target: str) -> None:
    """A checkpoint of another task (a tagger's for a classifier) is named as such, before its vocabularies are used."""
    saved = (read_checkpoint(ckpt_path).get("hyper_parameters") or {}).get("_target_")
    if saved and saved != target:
        raise ValueError(
            f"ckpt_path={ckpt_path} holds a {saved.rsplit('.', 1)[-1]}, but this run builds a "
            f"{target.rsplit('.', 1)[-1]}: the checkpoint belongs to another task"
        )


def check_monitor(monitor: str | None, model: L.LightningModule) -> None:
    """Fail before training, not after the first epoch, when `monitor` names a metric the task never logs."""
    names = getattr(model, "metric_names", None)
    if monitor is None or names is None:
        return
    train_names = getattr(model, "train_metric_names", names)
    valid = [f"val/{n}" for n in names] + [f"train/{n}" for n in train_names]
    if monitor not in valid:
        hint = " (train span metrics need model.train_metrics=true)" if monitor.startswith("train/") else ""
        raise ValueError(
            f"monitor={monitor!r}: {type(model).__name__} logs {valid}{hint} (set monitor=... and mode=min|max)"
        )


def summarize(
    trainer: L.Trainer, cfg: DictConfig, datamodule, weights: str | None, results: dict[str, Any]
) -> dict[str, Any]:
    ckpt_cb = trainer.checkpoint_callback
    best = ckpt_cb.best_model_score if ckpt_cb is not None and ckpt_cb.monitor else None
    if best is None and ckpt_cb is not None and ckpt_cb.monitor and ckpt_cb.best_model_path:
        # ddp_spawn hands the best checkpoint's path back to this process, not its score: the file has it
        saved = read_checkpoint(ckpt_cb.best_model_path).get("callbacks", {}).get(ckpt_cb.state_key, {})
        best = saved.get("best_model_score")
    # Without seqlab's callbacks Lightning adds a ModelCheckpoint that monitors nothing: report cfg.monitor then.
    monitor = (ckpt_cb.monitor if ckpt_cb is not None else None) or cfg.get("monitor")
    if best is None and monitor is not None:  # no checkpointing: fall back to the last logged value
        best = trainer.callback_metrics.get(monitor)
    datasets = getattr(datamodule, "datasets", None) or {}
    return {
        "monitor": monitor,
        "mode": (ckpt_cb.mode if ckpt_cb is not None and ckpt_cb.monitor else None) or cfg.get("mode"),
        "best_score": float(best) if best is not None else math.nan,
        "best_model_path": ckpt_cb.best_model_path if ckpt_cb is not None else None,
        "eval_ckpt_path": weights,
        **results,
        "samples": {split: len(ds) for split, ds in datasets.items()},
        "output_dir": OmegaConf.select(cfg, "paths.output_dir"),
    }
