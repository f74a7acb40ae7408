"""Every config composes and builds: each experiment end to end (data on a small slice), each encoder option."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from seqlab.cli import CONF_DIR
from seqlab.utils import fill_from_data
from tests.conftest import SHARED_DATA, compose_cfg

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
ENCODERS = sorted(p.stem for p in (CONF_DIR / "model" / "encoder").glob("*.yaml"))


def uses_shared_data(cfg) -> bool:
    return "${paths.data_dir}" in str(OmegaConf.to_container(cfg.data, resolve=False))


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\(\)`")
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name, tmp_path):
    cfg = compose_cfg(f"+experiment={name}", "data.max_train_samples=200", "data.max_eval_samples=50",
                      output_dir=tmp_path)
    if uses_shared_data(cfg) and not SHARED_DATA.is_dir():
        pytest.skip(f"{name} reads {SHARED_DATA}")
    assert OmegaConf.missing_keys(cfg.data) == set()
    dm = instantiate(cfg.data)
    dm.setup("fit")
    model = instantiate(fill_from_data(cfg.model, dm.dims))
    batch = next(iter(dm.train_dataloader()))
    assert model.training_step(batch, 0).ndim == 0
    for group in ("trainer", "callbacks", "logger"):
        assert cfg[group] is not None


@pytest.mark.parametrize("encoder", ENCODERS)
def test_every_encoder_option_builds(encoder, tmp_path):
    cfg = compose_cfg(f"model/encoder={encoder}", output_dir=tmp_path)
    enc = instantiate(fill_from_data(cfg.model.encoder, {"vocab_size": 50, "pad_token_id": 0}, prefix="model.encoder"))
    assert enc.output_dim > 0 and enc.num_directions in (1, 2)


@pytest.mark.parametrize("option", ["cpu", "gpu", "ddp", "default"])
def test_trainer_options_compose(option, tmp_path):
    cfg = compose_cfg(f"trainer={option}", output_dir=tmp_path)
    assert cfg.trainer._target_ == "lightning.Trainer"


def test_fill_from_data_fills_only_missing_and_names_what_is_left():
    cfg = OmegaConf.create({"a": "???", "enc": {"vocab_size": "???", "pad_token_id": 3}, "heads": [{"num_labels": "???"}]})
    out = fill_from_data(cfg, {"vocab_size": 10, "pad_token_id": 0, "num_labels": 2, "a": 1})
    assert OmegaConf.to_container(out) == {"a": 1, "enc": {"vocab_size": 10, "pad_token_id": 3}, "heads": [{"num_labels": 2}]}
    with pytest.raises(ValueError, match=r"model.enc.vocab_size must be set: the data provides only \['num_labels'\]"):
        fill_from_data(cfg, {"num_labels": 2})
