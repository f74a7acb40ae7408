"""Shared fixtures: configs composed from the real conf/ (as lightning-hydra-template does), shrunk for speed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from seqlab.cli import CONF_DIR

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SEQLAB_DATA_DIR", REPO.parent / "shared" / "data"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub name would otherwise retry ~30 s before failing
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Small models run fastest on one thread, and a second thread only fights other processes on a shared machine.
torch.set_num_threads(1)


def compose_cfg(*overrides: str, output_dir: Path | None = None):
    """`conf/train.yaml` + overrides, with outputs in `output_dir` and the real data root."""
    GlobalHydra.instance().clear()
    extra = [f"paths.data_dir={SHARED_DATA}"]
    if output_dir is not None:
        extra.append(f"paths.output_dir={output_dir}")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[*extra, *overrides])


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set SEQLAB_DATA_DIR)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide BERT with a 200-piece WordPiece tokenizer, saved with save_pretrained (offline)."""
    from tests.helpers.tiny_bert import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))
