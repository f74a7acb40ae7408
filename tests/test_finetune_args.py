"""`seqlab finetune`: HF flags -> Hydra overrides, composed with the real conf/ (nothing is trained)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import OmegaConf

from seqlab import finetune, finetune_flags
from seqlab.cli import COMMANDS
from seqlab.export.hf_results import hf_results, predictions_text
from seqlab.finetune import FinetuneError, prepare, to_overrides
from seqlab.finetune_flags import FLAGS, KEEP
from tests.conftest import compose_cfg

TINY_CONLL = Path(__file__).parent / "fixtures" / "tiny.conll"
GLUE_FLAGS = (
    "--do_train --do_eval --learning_rate 2e-5 --per_device_train_batch_size 16 --num_train_epochs 2 "
    "--eval_strategy epoch --save_strategy epoch --load_best_model_at_end --metric_for_best_model eval_loss "
    "--greater_is_better False --warmup_ratio 0.1 --weight_decay 0.01 --seed 7"
)


@pytest.fixture
def csv_files(tmp_path: Path) -> tuple[str, str]:
    for name in ("train.csv", "dev.csv"):
        (tmp_path / name).write_text("sentence,label\nit was good,pos\nit was bad,neg\n")
    return str(tmp_path / "train.csv"), str(tmp_path / "dev.csv")


def glue_argv(tmp_path: Path, csv_files: tuple[str, str], extra: str = "", flags: str = GLUE_FLAGS) -> list:
    """run_glue's command line on the csv files, plus `extra` flags."""
    train, dev = csv_files
    files = f"--train_file {train} --validation_file {dev}"
    return f"--model_name_or_path some/bert {files} --output_dir {tmp_path}/out {flags} {extra}".split()


def tagging_argv(tmp_path: Path, extra: str = "") -> list[str]:
    files = f"--train_file {TINY_CONLL} --test_file {TINY_CONLL} --output_dir {tmp_path}/out"
    return f"--model_name_or_path some/bert {files} --do_train --do_predict {extra}".split()


def compose(overrides: list[str], tmp_path: Path):
    return compose_cfg(*overrides, output_dir=tmp_path / "out")


def test_every_row_maps_to_a_config_key(tmp_path: Path, csv_files):
    """Across argvs that exercise every row, each row's key is in the composed config and holds the row's
    value: a key of the config files, an argument of its node's _target_ (``++``), or a Hydra key."""
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_text("")
    argvs = [
        glue_argv(
            tmp_path,
            csv_files,
            (
                "--tokenizer_name tok --pooling mean --freeze_layers 2 --max_seq_length 64 "
                "--max_train_samples 10 --max_eval_samples 5 --max_predict_samples 5 "
                "--preprocessing_num_workers 2 --text_pair_column_name b "
                "--label_column_name label --group_by_length --adam_beta2 0.98 --early_stopping_patience 2 "
                "--save_total_limit 2 --report_to tensorboard --use_cpu --run_name glue --dataset_name csv "
                "--dataset_config_name x"
            ),
        ),
        tagging_argv(
            tmp_path,
            (
                "--use_crf --tag_scheme IOB1 --text_column_name tokens --label_column_name tags "
                "--eval_strategy steps --eval_steps 10 --save_strategy steps --save_steps 25 --max_steps 100 "
                "--warmup_steps 0.1 --fp16 "
                "--disable_tqdm True"
            ),
        ),
        tagging_argv(tmp_path, "--save_strategy no"),
        tagging_argv(
            tmp_path,
            (
                f"--save_steps 10 --warmup_steps 5 --save_total_limit 3 --resume_from_checkpoint {ckpt} "
                f"--gradient_checkpointing --bf16 --use_cpu --validation_file {TINY_CONLL}"
            ),
        ),
    ]
    covered = set()
    for argv in argvs:
        a, overrides = prepare(argv)
        experiment = [o for o in overrides if o.startswith("+experiment=")]
        base = compose([*experiment, "model.encoder.model_name_or_path=x"], tmp_path)
        cfg = compose(overrides, tmp_path)
        for i, row in enumerate(FLAGS):
            value = row.value(a)
            if value is KEEP:
                continue
            covered.add(i)
            key = row.key.lstrip("+")
            if row.key in ("+experiment", "logger") or key.startswith("hydra."):
                continue  # a config group choice, or Hydra's own config (compose validates both)
            parent, name = key.rsplit(".", 1) if "." in key else ("", key)
            if row.key.startswith("++"):  # not in the config file: an argument of the node's class
                target = OmegaConf.select(cfg, f"{parent}._target_")
                assert name in inspect.signature(get_class(target)).parameters, row
            else:
                node = OmegaConf.select(base, parent) if parent else base
                assert node is not None and name in node.keys(), row  # keys(): a `???` value is there too
            got = OmegaConf.select(cfg, key)
            got = OmegaConf.to_container(got) if OmegaConf.is_config(got) else got
            assert got == finetune._plain(value), (row, got)
    missing = [FLAGS[i] for i in range(len(FLAGS)) if i not in covered]
    assert not missing


def test_every_argument_is_mapped():
    """Every field of seqlab's own dataclasses reaches the config (or is a check before the run)."""
    mapped = {row.name for row in FLAGS} | finetune.HANDLED
    for cls in (finetune.ModelArguments, finetune.DataArguments, finetune.ExtraArguments):
        for name in cls.__dataclass_fields__:
            assert name in mapped, f"{cls.__name__}.{name}"


def test_run_glue_command_line(tmp_path: Path, csv_files):
    cfg = compose(to_overrides(glue_argv(tmp_path, csv_files)), tmp_path)
    assert cfg.data._target_.endswith("TextClassificationDataModule")
    assert cfg.model.encoder.model_name_or_path == "some/bert"
    assert cfg.data.source.path == "csv"
    assert cfg.data.source.data_files == {"train": csv_files[0], "validation": csv_files[1], "test": None}
    assert cfg.data.text_column == "sentence" and cfg.data.label_column == "label"  # inferred from the file
    assert cfg.model.optimizer.lr == 2e-5 and cfg.model.optimizer.weight_decay == 0.01
    assert cfg.data.batch_size == 16 and cfg.data.eval_batch_size == 8
    assert cfg.trainer.max_epochs == 2 and cfg.trainer.max_steps == -1
    assert cfg.trainer.check_val_every_n_epoch == 1
    assert cfg.model.scheduler.warmup_ratio == 0.1 and cfg.model.scheduler.warmup_steps == 0
    assert (cfg.monitor, cfg.mode, cfg.eval_ckpt, cfg.seed) == ("val/loss", "min", "best", 7)
    assert (cfg.train, cfg.validate, cfg.test, cfg.predict) == (True, True, False, False)
    assert cfg.save_pretrained == str(tmp_path / "out")
    assert cfg.callbacks.model_checkpoint.every_n_epochs == 1
    assert cfg.callbacks.early_stopping is None
    assert list(cfg.logger) == ["csv"]


@pytest.mark.parametrize(
    ("flags", "monitor", "mode"),
    [
        ("--metric_for_best_model accuracy", "val/acc", "max"),
        ("--metric_for_best_model eval_accuracy", "val/acc", "max"),
        ("--metric_for_best_model eval_loss", "val/loss", "min"),
        ("--metric_for_best_model f1 --greater_is_better False", "val/f1", "min"),
        ("", "val/loss", "min"),  # HF: load_best_model_at_end without a metric selects by loss
    ],
)
def test_metric_for_best_model(tmp_path: Path, csv_files, flags, monitor, mode):
    glue = GLUE_FLAGS.replace("--metric_for_best_model eval_loss --greater_is_better False", "")
    cfg = compose(to_overrides(glue_argv(tmp_path, csv_files, flags, flags=glue)), tmp_path)
    assert (cfg.monitor, cfg.mode) == (monitor, mode)


def test_tagging_accuracy_is_token_accuracy(tmp_path: Path):
    a, _ = prepare(tagging_argv(tmp_path, "--eval_strategy epoch --metric_for_best_model accuracy"))
    assert finetune_flags._monitor(a) == "val/token_acc" and finetune_flags._mode(a) == "max"


def test_conll_file_is_tagging(tmp_path: Path):
    cfg = compose(to_overrides(tagging_argv(tmp_path, "--tag_scheme IOB1")), tmp_path)
    assert cfg.data._target_.endswith("TokenClassificationDataModule")
    assert cfg.data.source.path == "conll"
    assert list(cfg.data.source.reader_kwargs.columns) == ["tokens", "pos", "chunk", "tags"]  # 4 columns
    assert cfg.data.tag_scheme == "IOB1"
    assert (cfg.test, cfg.predict, cfg.eval_ckpt) == (True, True, "last")
    # eval_strategy no: no validation while fitting, yet a final validation (--do_eval) sees every batch
    assert (
        cfg.trainer.check_val_every_n_epoch == finetune_flags.NEVER and cfg.trainer.limit_val_batches is None
    )
    assert cfg.monitor is None


def test_json_with_tag_lists_is_tagging(tmp_path: Path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"tokens": ["Jane", "ran"], "ner_tags": ["B-PER", "O"]}) + "\n")
    argv = f"--model_name_or_path m --train_file {path} --output_dir {tmp_path}/o --do_train"
    a, overrides = prepare(argv.split())
    assert a.task == "tagging" and "data.tags_column=ner_tags" in overrides


def test_hub_dataset_offline_asks_for_task(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = f"--model_name_or_path m --dataset_name nobody/nothing --output_dir {tmp_path}/o --do_train"
    with pytest.raises(FinetuneError, match="--task classification or --task tagging"):
        prepare(argv.split())
    _, overrides = prepare(f"{argv} --task classification --text_column_name t --label_column_name y".split())
    assert "data.source.path=nobody/nothing" in overrides


def test_steps_strategies(tmp_path: Path, csv_files):
    glue = GLUE_FLAGS.replace("--eval_strategy epoch --save_strategy epoch", "")
    extra = "--eval_strategy steps --eval_steps 50 --save_strategy steps --save_steps 100"
    extra += " --gradient_accumulation_steps 2"
    cfg = compose(to_overrides(glue_argv(tmp_path, csv_files, extra, flags=glue)), tmp_path)
    assert cfg.trainer.val_check_interval == 100  # Lightning counts batches: 50 optimizer steps x 2
    assert cfg.trainer.check_val_every_n_epoch is None
    # a multiple of eval_steps: saved after each evaluation, where the monitored value is current
    assert cfg.callbacks.model_checkpoint.every_n_epochs == 1
    assert cfg.callbacks.model_checkpoint.save_on_train_epoch_end is False


def test_save_strategy_no_and_keep_latest(tmp_path: Path, csv_files):
    base = f"--model_name_or_path m --train_file {csv_files[0]} --output_dir {tmp_path}/out --do_train"
    cfg = compose(to_overrides(f"{base} --save_strategy no".split()), tmp_path)
    assert cfg.callbacks.model_checkpoint is None and cfg.trainer.enable_checkpointing is False
    cfg = compose(to_overrides(f"{base} --save_steps 10 --save_total_limit 2".split()), tmp_path)
    ckpt = cfg.callbacks.model_checkpoint
    assert (ckpt.every_n_train_steps, ckpt.save_top_k, ckpt.monitor, ckpt.mode) == (10, 2, "step", "max")


def test_unknown_flag_suggests(tmp_path: Path, csv_files):
    with pytest.raises(FinetuneError, match="--learnig_rate \\(did you mean --learning_rate"):
        to_overrides(glue_argv(tmp_path, csv_files, "--learnig_rate 1e-4"))


@pytest.mark.parametrize("flags", ["--torch_compile", "--label_smoothing_factor 0.1", "--optim adafactor"])
def test_unsupported_flag_is_an_error(tmp_path: Path, csv_files, flags):
    with pytest.raises(FinetuneError, match=f"{flags.split()[0]} is not supported by seqlab finetune"):
        to_overrides(glue_argv(tmp_path, csv_files, flags))


def test_unsupported_flags_at_their_defaults_are_accepted(tmp_path: Path, csv_files):
    flags = "--torch_compile False --label_smoothing_factor 0.0 --optim adamw_torch --log_level info"
    to_overrides(glue_argv(tmp_path, csv_files, flags))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ("--save_strategy steps", "--load_best_model_at_end requires the save and eval strategy to match"),
        ("--num_train_epochs 1.5", "use --max_steps"),
        ("--report_to wandb", "--report_to wandb: not supported"),
        ("--task tagging --pooling cls", "--pooling applies to classification"),
        ("--no_load_best_model_at_end", "unrecognized arguments: --no_load_best_model_at_end"),
        ("--train_sampling_strategy sequential", "seqlab samples random or group_by_length"),
        ("--lr_scheduler_type reduce_lr_on_plateau", "model/scheduler=plateau"),
        ("--logging_steps 0.5", "a ratio of the training steps"),
    ],
)
def test_errors(tmp_path: Path, csv_files, flags, message):
    with pytest.raises(FinetuneError, match=message):
        to_overrides(glue_argv(tmp_path, csv_files, flags))


def test_nothing_to_do(tmp_path: Path, csv_files):
    with pytest.raises(FinetuneError, match="nothing to do"):
        to_overrides(f"--model_name_or_path m --train_file {csv_files[0]} --output_dir {tmp_path}/o".split())


def test_data_arguments_are_validated_early(tmp_path: Path, csv_files):
    with pytest.raises(FinetuneError, match="Need either a dataset name"):
        to_overrides(f"--model_name_or_path m --output_dir {tmp_path}/o --do_train".split())
    argv = f"--model_name_or_path m --train_file {csv_files[0]} --validation_file a.jsonl --output_dir o"
    argv += " --do_train"
    with pytest.raises(FinetuneError, match="share one format"):
        to_overrides(argv.split())


def test_non_empty_output_dir(tmp_path: Path, csv_files):
    out = tmp_path / "out"
    out.mkdir()
    (out / "something.txt").write_text("x")
    with pytest.raises(FinetuneError, match=r"Output directory \(.*\) already exists and is not empty"):
        to_overrides(glue_argv(tmp_path, csv_files))
    to_overrides(glue_argv(tmp_path, csv_files, "--overwrite_output_dir"))
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "last.ckpt").write_text("x")
    overrides = to_overrides(glue_argv(tmp_path, csv_files))  # run_glue: resume from the last checkpoint
    assert f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}" in overrides


def test_hydra_overrides_come_last_and_win(tmp_path: Path, csv_files):
    argv = glue_argv(tmp_path, csv_files)
    argv.insert(argv.index("--do_train") + 1, "trainer.max_epochs=1")  # right after a boolean flag
    overrides = to_overrides([*argv, "+trainer.max_time=00:00:01:00", "data.num_workers=2"])
    assert overrides[-3:] == ["trainer.max_epochs=1", "+trainer.max_time=00:00:01:00", "data.num_workers=2"]
    assert "trainer.max_epochs=2" not in overrides
    cfg = compose(overrides, tmp_path)
    assert cfg.trainer.max_epochs == 1 and cfg.data.num_workers == 2 and cfg.train is True


def test_values_are_quoted_for_hydra(tmp_path: Path):
    path = tmp_path / "my data" / "train 1.conll"
    path.parent.mkdir()
    path.write_text(TINY_CONLL.read_text())
    argv = [
        "--model_name_or_path",
        "null",
        "--train_file",
        str(path),
        "--output_dir",
        str(tmp_path / "o"),
        "--do_train",
        "--run_name",
        "it's",
    ]
    cfg = compose(to_overrides(argv), tmp_path)
    assert cfg.data.source.data_files.train == str(path)
    assert cfg.model.encoder.model_name_or_path == "null" and cfg.task_name == "it's"


def test_hf_results():
    summary = {
        "monitor": "val/acc",
        "best_score": 0.9,
        "best_model_path": "ckpt",
        "eval_ckpt_path": "ckpt",
        "train": {"train/loss": 0.3, "epoch": 2, "global_step": 40},
        "val": {"val/loss": 0.25, "val/acc": 0.9, "val/f1": 0.88},
        "test": {"test/loss": 0.3, "test/acc": 0.85},
        "samples": {"train": 100, "validation": 20, "test": 30},
        "predictions": None,
        "export_dir": "out",
        "output_dir": "out",
    }
    files = hf_results(summary)
    assert files["train_results.json"] == {"epoch": 2, "train_loss": 0.3, "train_samples": 100}
    assert files["eval_results.json"] == {
        "epoch": 2,
        "eval_loss": 0.25,
        "eval_accuracy": 0.9,
        "eval_f1": 0.88,
        "eval_samples": 20,
    }
    assert files["predict_results.json"] == {
        "predict_loss": 0.3,
        "predict_accuracy": 0.85,
        "predict_samples": 30,
    }
    assert files["all_results.json"] == {
        **files["train_results.json"],
        **files["eval_results.json"],
        **files["predict_results.json"],
    }
    evaluated = hf_results({**summary, "train": {}, "test": {}})  # --do_eval alone
    assert set(evaluated) == {"eval_results.json", "all_results.json"}
    assert "epoch" not in evaluated["eval_results.json"]


def test_predictions_text():
    classified = predictions_text([{"prediction": "pos", "probs": {}}, {"prediction": "neg"}])
    assert classified == "index\tprediction\n0\tpos\n1\tneg\n"  # run_glue
    assert predictions_text([{"prediction": ["B-PER", "O"]}, {"prediction": []}]) == "B-PER O\n\n"  # run_ner


def test_cli_registers_finetune_and_reports_errors(capsys):
    from seqlab.cli import main

    assert "finetune" in COMMANDS
    with pytest.raises(SystemExit) as exit_info:
        main("finetune --model_name_or_path m --train_file a.csv --output_dir o".split())
    assert exit_info.value.code == 2
    expected = "seqlab finetune: error: nothing to do: pass --do_train, --do_eval or --do_predict"
    assert capsys.readouterr().err.strip() == expected


def test_help_mentions_overrides_and_mapped_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        finetune.main(["--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--model_name_or_path" in out and "Hydra overrides" in out
    assert "acts on: activation_checkpointing, adam_beta1" in out


def test_main_writes_hf_result_files(tmp_path: Path, csv_files, monkeypatch):
    """main() runs `seqlab train` on the overrides (stubbed: nothing trains), then rewrites its summary."""
    out = tmp_path / "out"

    def fake_train(overrides: list[str]) -> None:
        assert f"hydra.run.dir={out}" in overrides and "predict=true" in overrides
        out.mkdir()
        (out / "predictions.jsonl").write_text('{"prediction": "pos"}\n{"prediction": "neg"}\n')
        summary = {
            "train": {"train/loss": 0.5, "epoch": 2, "global_step": 4},
            "val": {"val/acc": 1.0},
            "test": {"test/acc": 0.5},
            "samples": {"train": 2, "validation": 2, "test": 2},
            "predictions": str(out / "predictions.jsonl"),
        }
        (out / "summary.json").write_text(json.dumps(summary))

    monkeypatch.setattr(finetune, "_train", fake_train)
    finetune.main(glue_argv(tmp_path, csv_files, f"--do_predict --test_file {csv_files[1]}"))
    expected = {"epoch": 2, "eval_accuracy": 1.0, "eval_samples": 2}
    assert json.loads((out / "eval_results.json").read_text()) == expected
    assert json.loads((out / "all_results.json").read_text())["predict_accuracy"] == 0.5
    assert (out / "predict_results.txt").read_text() == "index\tprediction\n0\tpos\n1\tneg\n"
