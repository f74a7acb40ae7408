"""Real data from ../shared/data (or $SEQLAB_DATA_DIR), on small slices with lower floors than the benchmarks.

The full-size runs and their floors are in benchmarks/quality.py and the README.
"""

from __future__ import annotations

from seqlab.train import run
from tests.conftest import compose_cfg

SST2_SLICE_FLOOR = 0.70  # dev accuracy after 2 epochs on the first 12,000 rows of train


def test_sst2_slice_beats_floor_on_dev(shared_data, tmp_path):
    cfg = compose_cfg("+experiment=lstm_sst2", "data.max_train_samples=12000", "trainer.max_epochs=2",
                      "callbacks.rich_progress_bar=null", output_dir=tmp_path)
    summary = run(cfg)
    assert summary["test"]["test/acc"] >= SST2_SLICE_FLOOR, summary
