"""``seqlab eval ckpt_path=CKPT [split=test|validation] [output_dir=DIR] [data.KEY=VALUE ...]``.

Rebuilds the DataModule the checkpoint was trained with (its data config and vocabularies travel inside it),
applies the given ``data.*`` / ``trainer.*`` overrides (another test file: ``data.source.data_files.test=x.csv``),
loads the checkpoint's weights and runs the same `seqlab.train.run` with ``train=false``: the metrics are printed
and written to ``<output_dir>/summary.json``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from seqlab.cli import CONF_DIR, UsageError, parse_options

OPTIONS = {
    "ckpt_path": "the checkpoint to evaluate (required)",
    "split": "test (default) or validation",
    "output_dir": "where to write summary.json and the logs (default: outputs/eval/<date>/<time>)",
}
OVERRIDABLE = ("data.", "trainer.")  # dotted keys passed through to the composed config
# A task reads the batches of one DataModule class.
DATA_OF_TASK = {
    "TextClassificationTask": "TextClassificationDataModule",
    "SequenceTaggingTask": "TokenClassificationDataModule",
    "LanguageModelTask": "LanguageModelDataModule",
}


def build_config(ckpt_path: str, split: str, output_dir: Path, overrides: dict[str, str]):
    """conf/train.yaml's trainer, logger and paths, with the checkpoint's own data and model configs."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from seqlab.checkpoint import data_config, read

    ckpt = read(ckpt_path)
    model_cfg = ckpt.get("hyper_parameters") or {}
    if "_target_" not in model_cfg:
        raise ValueError(f"{ckpt_path}: no model config in the checkpoint; was it written by seqlab train?")
    data_cfg = OmegaConf.create(data_config(ckpt_path))
    OmegaConf.set_struct(data_cfg, True)  # a mistyped key is an error, not a new key nobody reads
    for key, value in overrides.items():
        if key.startswith("data."):
            try:
                OmegaConf.update(data_cfg, key.removeprefix("data."), yaml.safe_load(value))
            except Exception:
                raise ValueError(
                    f"{key}: no such key in the checkpoint's data config ({sorted(data_cfg)})"
                ) from None
    OmegaConf.set_struct(data_cfg, False)
    task, data = (
        model_cfg["_target_"].rsplit(".", 1)[-1],
        str(data_cfg.get("_target_", "")).rsplit(".", 1)[-1],
    )
    if DATA_OF_TASK.get(task) != data:
        raise ValueError(f"{ckpt_path} holds a {task}, which cannot be evaluated on {data} data")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                "callbacks=none",
                f"paths.output_dir={output_dir}",
                "train=false",
                f"ckpt_path={ckpt_path}",
                "logger.csv.resume_from=null",  # an evaluation starts its own metrics, never continues a run's
                f"validate={split == 'validation'}",
                f"test={split == 'test'}",
                *(f"{k}={v}" for k, v in overrides.items() if k.startswith("trainer.")),
            ],
        )
    GlobalHydra.instance().clear()
    cfg.data = data_cfg
    cfg.model = OmegaConf.create(model_cfg)
    cfg.monitor = None  # nothing is trained: no checkpoint selection
    return cfg


def main(argv: list[str]) -> None:
    from rich.logging import RichHandler

    from seqlab.train import run

    fixed = [a for a in argv if not a.startswith(OVERRIDABLE)]
    overrides = dict(a.split("=", 1) for a in argv if a.startswith(OVERRIDABLE) and "=" in a)
    if len(overrides) != len([a for a in argv if a.startswith(OVERRIDABLE)]):
        raise UsageError("overrides are key=value, e.g. data.max_eval_samples=100")
    opts = parse_options(
        fixed, {**OPTIONS, "data.KEY": "a data override", "trainer.KEY": "a trainer override"}, "eval"
    )
    if "ckpt_path" not in opts:
        raise UsageError("ckpt_path=... is required")
    split = opts.get("split", "test")
    if split not in ("test", "validation"):
        raise UsageError(f"split={split!r}: choose test or validation")
    output_dir = Path(
        opts.get("output_dir")
        or Path("outputs", "eval", time.strftime("%Y-%m-%d"), time.strftime("%H-%M-%S"))
    )
    cfg = build_config(opts["ckpt_path"], split, output_dir.resolve(), overrides)
    output_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
    run(cfg)
