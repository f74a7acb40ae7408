"""Every config composes and builds: each experiment end to end (data on a small slice), each encoder option."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from seqlab.cli import CONF_DIR
from seqlab.utils import fill_from_data, instantiate_list
from tests.conftest import SHARED_DATA, compose_cfg
from tests.helpers.tiny_data import write_classification, write_tagging


def options(group: str) -> list[str]:
    """Every option of a config group: the YAML files in its folder."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


EXPERIMENTS = options("experiment")
ENCODERS = options("model/encoder")


def uses_shared_data(cfg) -> bool:
    return "${paths.data_dir}" in str(OmegaConf.to_container(cfg.data, resolve=False))


def own_files(cfg, request, tmp_path) -> list[str]:
    """Overrides that an experiment leaves to the user: the pretrained model (the tiny test BERT stands in for
    MiniLM and for finetune_*'s ???) and the data files of the generic finetune_* recipes."""
    extra = []
    if OmegaConf.select(cfg, "model.encoder._target_", default="").endswith("HFEncoder"):
        extra.append(f"model.encoder.model_name_or_path={request.getfixturevalue('tiny_bert')}")
    hf_files = cfg.data.source._target_.endswith("HFSource") and not uses_shared_data(cfg)
    if hf_files and (
        OmegaConf.is_missing(cfg.data.source, "path") or cfg.data.source.data_files.train is None
    ):
        tagging = "tagging" in cfg.data._target_
        files = (write_tagging if tagging else write_classification)(
            tmp_path, **({} if tagging else {"n_train": 40})
        )
        extra += [
            f"data.source.path={'jsonl' if tagging else 'csv'}",
            *(f"data.source.data_files.{k}={v}" for k, v in files.items()),
        ]
    return extra


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\(\)`")
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name, request, tmp_path):
    quick = [f"+experiment={name}", "data.max_train_samples=200", "data.max_eval_samples=50"]
    cfg = compose_cfg(*quick, output_dir=tmp_path)
    if uses_shared_data(cfg) and not SHARED_DATA.is_dir():
        pytest.skip(f"{name} reads {SHARED_DATA}")
    cfg = compose_cfg(*quick, *own_files(cfg, request, tmp_path), output_dir=tmp_path)
    assert OmegaConf.missing_keys(cfg.data) == set()
    dm = instantiate(cfg.data)
    dm.setup("fit")
    model = instantiate(fill_from_data(cfg.model, dm.dims))
    batch = next(iter(dm.train_dataloader()))
    assert model.training_step(batch, 0).ndim == 0


@pytest.mark.parametrize("encoder", ENCODERS)
def test_every_encoder_option_builds(encoder, request, tmp_path):
    cfg = compose_cfg(f"model/encoder={encoder}", output_dir=tmp_path)
    cfg = compose_cfg(f"model/encoder={encoder}", *own_files(cfg, request, tmp_path), output_dir=tmp_path)
    enc = instantiate(
        fill_from_data(cfg.model.encoder, {"vocab_size": 50, "pad_token_id": 0}, prefix="model.encoder")
    )
    assert enc.output_dim > 0 and enc.num_directions in (1, 2)


@pytest.mark.parametrize("chars", options("model/encoder/char_encoder"))
def test_every_char_encoder_option_builds_into_the_rnn(chars, tmp_path):
    cfg = compose_cfg(f"+model/encoder/char_encoder={chars}", output_dir=tmp_path)
    enc = instantiate(
        fill_from_data(cfg.model.encoder, {"vocab_size": 50, "pad_token_id": 0, "num_chars": 30})
    )
    assert enc.char_encoder.output_dim > 0
    assert enc.rnn.input_size == cfg.model.encoder.embed_dim + enc.char_encoder.output_dim


@pytest.mark.parametrize("optimizer", options("model/optimizer"))
@pytest.mark.parametrize("scheduler", [None, *options("model/scheduler")])
def test_every_optimizer_and_scheduler_builds(optimizer, scheduler, tmp_path):
    overrides = [f"model/optimizer={optimizer}"] + ([f"model/scheduler={scheduler}"] if scheduler else [])
    cfg = fill_from_data(
        compose_cfg(*overrides, output_dir=tmp_path),
        {"vocab_size": 50, "pad_token_id": 0, "num_labels": 2, "labels": ["a", "b"]},
    )
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = instantiate(cfg.model.optimizer)(params=params)
    assert opt.param_groups[0]["params"] == params
    if scheduler:
        extra = {"num_training_steps": 10} if scheduler == "hf" else {}  # what build_optimizers passes it
        instantiate(cfg.model.scheduler)(optimizer=opt, **extra).step(
            *([1.0] if scheduler == "plateau" else [])
        )


@pytest.mark.parametrize("group", ["callbacks", "logger"])
def test_every_callback_and_logger_option_builds(group, tmp_path):
    for option in options(group):
        extra = ["callbacks.pretrained_vectors.path=vectors.txt"] if option == "pretrained_vectors" else []
        cfg = compose_cfg(f"{group}={option}", *extra, output_dir=tmp_path)
        built = instantiate_list(cfg[group])
        assert len(built) == len([v for v in (cfg[group] or {}).values() if v is not None]), option


@pytest.mark.parametrize("option", options("trainer"))
def test_every_trainer_option_builds(option, tmp_path):
    # gpu / ddp are built on the CPU here: what is checked is that every key is a Trainer argument.
    cfg = compose_cfg(f"trainer={option}", "trainer.accelerator=cpu", output_dir=tmp_path)
    trainer = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
    assert trainer.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("option", options("debug"))
def test_every_debug_option_builds_a_trainer(option, tmp_path):
    cfg = compose_cfg("+experiment=lstm", f"debug={option}", output_dir=tmp_path)
    assert instantiate(cfg.trainer, logger=False) is not None
    # The debug mode's own trainer settings survive an experiment (max_epochs is the experiment's to set).
    own = OmegaConf.load(CONF_DIR / "debug" / f"{option}.yaml").get("trainer", {})
    for key, value in own.items():
        if key != "max_epochs":
            assert cfg.trainer[key] == value, key


def test_fill_from_data_fills_only_missing_and_names_what_is_left():
    cfg = OmegaConf.create(
        {"a": "???", "enc": {"vocab_size": "???", "pad_token_id": 3}, "heads": [{"num_labels": "???"}]}
    )
    out = fill_from_data(cfg, {"vocab_size": 10, "pad_token_id": 0, "num_labels": 2, "a": 1})
    assert OmegaConf.to_container(out) == {
        "a": 1,
        "enc": {"vocab_size": 10, "pad_token_id": 3},
        "heads": [{"num_labels": 2}],
    }
    with pytest.raises(
        ValueError, match=r"model.enc.vocab_size must be set: the data provides only \['num_labels'\]"
    ):
        fill_from_data(cfg, {"num_labels": 2})
