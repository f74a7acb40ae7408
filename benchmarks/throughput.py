"""Training and data throughput, measured in one run on this machine, printed as one table of tokens/s and ratios.

    python benchmarks/throughput.py                  # every row (~8 min on 2 cores)
    python benchmarks/throughput.py --only loop,data # some rows: loop, bucketing, crf, softmax, data

Rows (real data from $SEQLAB_DATA_DIR or ../shared/data; SST-2 rows fall back to the embedded data):
  loop       seqlab's Trainer path (the default callbacks: rich progress bar, LR monitor, padding share,
             reseeding, non-finite check; train accuracy logged) vs a hand-written loop over the same batches from the
             same initial weights: `lstm_sst2`'s model on SST-2.
  bucketing  one epoch of SST-2 end to end (the Trainer, the DataModule's loader, collation): bucketed batches
             (the default) vs random batches (``data.bucketing=false``); tokens/s of real tokens, padding share.
  crf        `bilstm_conll`'s BiLSTM-CRF training step without and with train span metrics (Viterbi + spans).
  softmax    `lstm_wikitext2`'s language model with its adaptive softmax vs a full softmax of the same size.
  data       tokenize + numericalize (the DataModule's `tokenize_split`: Arrow in, Arrow out) vs the raw
             `tokenizers` ``encode_batch`` on the same SST-2 sentences, reading the ids out of its Encodings
             (what any use of them costs), and vs ``encode_batch_fast`` (no character offsets), which seqlab's
             word tokenizer calls; then a second, cached DataModule set-up.

Each timed pair runs alternately, twice, and keeps each side's best time, so that a burst of load from elsewhere
on a shared machine does not decide a ratio. The loop row's gap is a few percent, smaller than such bursts: it
runs each side nine times, times stretches of 25 batches (~1 s, several progress-bar redraws and logging steps
each) and adds up each stretch's best time, so that one burst spoils one stretch of one run, not the ratio. Its
hand loop runs twice a round: the ratio of those two timings of the same code is the row's resolution that day.
Timings are never test assertions: this prints them.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_CACHE = tempfile.mkdtemp(prefix="seqlab-throughput-")
os.environ["HF_DATASETS_CACHE"] = (
    _CACHE  # the first load below is really uncached (set before datasets loads)
)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import lightning as L  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from lightning.pytorch.callbacks import Callback  # noqa: E402

from seqlab.cli import CONF_DIR  # noqa: E402
from seqlab.data.base import column  # noqa: E402
from seqlab.utils import fill_from_data  # noqa: E402

# The loop row times stretches of this many batches (~1 s: several progress-bar redraws and logging steps each).
LOOP_STRETCH = 25
ROWS = ("data", "loop", "bucketing", "crf", "softmax")  # data first: its first set-up must find no cache
# The default callbacks that act during training (checkpointing and early stopping act at validation, skipped here).
TRAINER_PATH_CALLBACKS = (
    "rich_progress_bar",
    "lr_monitor",
    "reseed_each_epoch",
    "stop_on_non_finite_loss",
    "padding_share",
)


def config(data_dir: Path, *overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=[f"paths.data_dir={data_dir}", "paths.output_dir=null", *overrides])


def build(cfg):
    """The DataModule (set up) and a fresh model, as `seqlab.train.run` builds them."""
    L.seed_everything(cfg.seed, verbose=False)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    model = instantiate(fill_from_data(cfg.model, dm.dims))
    return dm, model


def real_tokens(batch) -> int:
    return int(batch["attention_mask"].sum())


class Fixed:
    """The same batches every epoch, as a loader (a plain list would be read as a list of loaders)."""

    def __init__(self, batches: list):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class EpochTimer(Callback):
    """Wall time of a training epoch (the loop only: no set-up, no validation), in stretches of `every` batches
    (one stretch, the epoch, by default)."""

    def __init__(self, every: int = 0):
        self.every = every

    def on_train_epoch_start(self, trainer, pl_module):
        self.marks = [time.perf_counter()]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.every and batch_idx and batch_idx % self.every == 0:
            self.marks.append(time.perf_counter())

    def on_train_epoch_end(self, trainer, pl_module):
        self.marks.append(time.perf_counter())

    @property
    def stretches(self) -> list[float]:
        return [b - a for a, b in zip(self.marks, self.marks[1:], strict=False)]

    @property
    def seconds(self) -> float:
        return self.marks[-1] - self.marks[0]


def timed_fit(
    cfg, model, loader, *, max_steps: int = -1, extra: Iterable[Callback] = (), every: int = 0
) -> EpochTimer:
    """One epoch through seqlab's Trainer path (the default callbacks, the csv logger); its timer."""
    timer = EpochTimer(every)
    callbacks = [instantiate(c) for name, c in cfg.callbacks.items() if name in TRAINER_PATH_CALLBACKS and c]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(
            accelerator="cpu",
            max_epochs=1,
            max_steps=max_steps,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            enable_checkpointing=False,
            enable_model_summary=False,
            logger=L.pytorch.loggers.CSVLogger(tmp),
            callbacks=[*callbacks, *extra, timer],
            gradient_clip_val=cfg.trainer.get("gradient_clip_val"),
            log_every_n_steps=cfg.trainer.get("log_every_n_steps", 50),
        )
        trainer.fit(model, train_dataloaders=loader)
    return timer


def trainer_fit(cfg, model, loader, *, max_steps: int = -1, extra: Iterable[Callback] = ()) -> float:
    """The seconds of one epoch through seqlab's Trainer path."""
    return timed_fit(cfg, model, loader, max_steps=max_steps, extra=extra).seconds


def hand_loop(model, batches: list, every: int = 0) -> list[float]:
    """The loop a PyTorch user writes: forward, cross-entropy, backward, step; the seconds of each stretch of
    `every` batches (one stretch by default), as `EpochTimer` times the Trainer's."""
    opt = model.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    model.train()
    marks = [time.perf_counter()]
    for i, batch in enumerate(batches):
        if every and i and i % every == 0:
            marks.append(time.perf_counter())
        loss = F.cross_entropy(model.logits(batch), batch["labels"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    marks.append(time.perf_counter())
    return [b - a for a, b in zip(marks, marks[1:], strict=False)]


def best_of(a: Callable[[], float], b: Callable[[], float], repeats: int = 2) -> tuple[float, float]:
    """Run a and b alternately; each side's best seconds (each run one stretch)."""
    best_a, best_b = best_stretches(lambda: [a()], lambda: [b()], repeats=repeats)
    return best_a, best_b


def best_stretches(*runs: Callable[[], list[float]], repeats: int) -> tuple[float, ...]:
    """Run each of `runs` in turn, `repeats` rounds, each round starting one further along (so each run follows
    every other equally often), each timing the same stretches of batches; for each, the sum over the stretches
    of its best time for that stretch. A burst of load from elsewhere then spoils one stretch of one run, where
    a best whole run needs a run that no burst touched."""
    times: list[list[list[float]]] = [[] for _ in runs]
    for r in range(repeats):
        for i in (*range(r % len(runs), len(runs)), *range(r % len(runs))):
            times[i].append(runs[i]())
    return tuple(sum(map(min, zip(*seen, strict=True))) for seen in times)


def sst2_overrides(data_dir: Path) -> list[str]:
    if (data_dir / "sst2" / "train.tsv").is_file():
        return ["+experiment=lstm_sst2"]
    print(f"(no {data_dir}/sst2: the SST-2 rows use the embedded data)", file=sys.stderr)
    return ["+experiment=lstm_sst2", "data=negation"]


def row_loop(data_dir: Path, n_batches: int) -> list[str]:
    cfg = config(data_dir, *sst2_overrides(data_dir))  # (classification always logs train accuracy)
    dm, model = build(cfg)
    batches = [b for _, b in zip(range(n_batches), dm.train_dataloader(), strict=False)]
    tokens = sum(map(real_tokens, batches))
    initial = copy.deepcopy(model.state_dict())

    def fresh():
        model.load_state_dict(initial)
        return model

    def hand() -> list[float]:
        return hand_loop(fresh(), batches, every=LOOP_STRETCH)

    # The hand loop runs twice per round: how far apart two timings of the same code come out is the resolution
    # of the ratio on this machine today (the rounds rotate: neither timing always follows the Trainer).
    hand_s, lightning_s, again_s = best_stretches(
        hand, lambda: timed_fit(cfg, fresh(), Fixed(batches), every=LOOP_STRETCH).stretches, hand, repeats=9
    )
    return [
        f"| Trainer path vs hand loop, `lstm_sst2` model, {len(batches)} batches | hand loop | {tokens / hand_s:,.0f} | |",
        f"| | hand loop again (the same code: the measurement's spread) | {tokens / again_s:,.0f} | {hand_s / again_s:.3f}x |",
        f"| | seqlab Trainer | {tokens / lightning_s:,.0f} | **{hand_s / lightning_s:.3f}x** (≥ 0.97) |",
    ]


def row_bucketing(data_dir: Path) -> list[str]:
    cfg = config(data_dir, *sst2_overrides(data_dir))
    dm, model = build(cfg)
    initial = copy.deepcopy(model.state_dict())
    loaders, share = {}, {}
    for bucketing in (True, False):
        dm.bucketing = bucketing
        loaders[bucketing] = dm.train_dataloader()
        real = padded = 0
        for batch in loaders[bucketing]:  # this epoch's padding share (a loader's order is fixed per epoch)
            real += real_tokens(batch)
            padded += batch["attention_mask"].numel()
        share[bucketing] = 1 - real / padded

    def epoch(bucketing: bool) -> float:
        model.load_state_dict(initial)
        return trainer_fit(cfg, model, loaders[bucketing])

    bucketed_s, random_s = best_of(lambda: epoch(True), lambda: epoch(False))
    bt, rt = real / bucketed_s, real / random_s
    return [
        f"| one SST-2 epoch, random batches | padding {share[False]:.1%} | {rt:,.0f} | |",
        f"| one SST-2 epoch, bucketed batches | padding {share[True]:.1%} (< 5%) | {bt:,.0f} | **{bt / rt:.2f}x** (≥ 2) |",
    ]


def row_crf(data_dir: Path, n_batches: int) -> list[str]:
    if not (data_dir / "conll2003").is_dir():
        return [f"| CRF step | (no {data_dir}/conll2003: skipped) | | |"]
    times, tokens = {}, 0
    models = {}
    for on in ("false", "true"):
        cfg = config(data_dir, "+experiment=bilstm_conll", f"model.train_metrics={on}")
        dm, models[on] = build(cfg)
    batches = [b for _, b in zip(range(n_batches), dm.train_dataloader(), strict=False)]
    tokens = sum(map(real_tokens, batches))
    off_s, on_s = best_of(
        lambda: trainer_fit(cfg, copy.deepcopy(models["false"]), Fixed(batches)),
        lambda: trainer_fit(cfg, copy.deepcopy(models["true"]), Fixed(batches)),
    )
    times = {"off": off_s, "on": on_s}
    return [
        f"| BiLSTM-CRF step (`bilstm_conll`), {len(batches)} batches | train span F1 on | {tokens / times['on']:,.0f} | |",
        f"| | train span F1 off (default) | {tokens / times['off']:,.0f} | **{times['on'] / times['off']:.2f}x** as fast |",
    ]


def row_softmax(data_dir: Path, n_batches: int) -> list[str]:
    if not (data_dir / "wikitext-2").is_dir():
        return [f"| LM softmax | (no {data_dir}/wikitext-2: skipped) | | |"]
    seconds, tokens = {}, {}
    for name, extra in (("adaptive", []), ("full", ["model.adaptive_softmax_cutoffs=null"])):
        cfg = config(data_dir, "+experiment=lstm_wikitext2", *extra)
        dm, model = build(cfg)
        loader = dm.train_dataloader()
        tokens[name] = n_batches * cfg.data.batch_size * cfg.data.bptt
        seconds[name] = trainer_fit(cfg, model, loader, max_steps=n_batches)
    rate = {k: tokens[k] / seconds[k] for k in seconds}
    return [
        f"| LSTM LM 200 (`lstm_wikitext2`), {n_batches} batches | full softmax | {rate['full']:,.0f} | |",
        f"| | adaptive softmax | {rate['adaptive']:,.0f} | **{rate['adaptive'] / rate['full']:.1f}x** (≥ 4) |",
    ]


def row_data(data_dir: Path) -> list[str]:
    import datasets

    overrides = sst2_overrides(data_dir)
    cfg = config(data_dir, *overrides)
    start = time.perf_counter()
    dm = instantiate(cfg.data)
    dm.setup("fit")
    first = time.perf_counter() - start
    raw = dm.load_splits(split_seed=cfg.data.split_seed)["train"]
    texts = column(raw, cfg.data.text_column)
    tok = dm.tokenizer

    def raw_encode(fast: bool = False) -> Callable[[], float]:
        encode = tok._tok.encode_batch_fast if fast else tok._tok.encode_batch

        def timed() -> float:  # the ids a model needs, read out of each Encoding
            start = time.perf_counter()
            [e.ids for e in encode(texts, add_special_tokens=False)]
            return time.perf_counter() - start

        return timed

    def seqlab_encode() -> float:
        datasets.disable_caching()  # recompute, do not read the result back
        try:
            start = time.perf_counter()
            dm._encode(raw, "train")
            return time.perf_counter() - start
        finally:
            datasets.enable_caching()

    n_tokens = sum(len(e.ids) for e in tok._tok.encode_batch(texts, add_special_tokens=False))
    raw_s, seqlab_s = best_of(raw_encode(), seqlab_encode)
    fast_s, seqlab_s2 = best_of(raw_encode(fast=True), seqlab_encode)
    seqlab_s = min(seqlab_s, seqlab_s2)
    start = time.perf_counter()
    again = instantiate(cfg.data)
    again.setup("fit")
    cached = time.perf_counter() - start
    return [
        f"| tokenize + numericalize SST-2 train ({len(texts):,} rows) | raw `tokenizers` encode_batch | {n_tokens / raw_s:,.0f} | |",
        f"| | raw `tokenizers` encode_batch_fast | {n_tokens / fast_s:,.0f} | {raw_s / fast_s:.2f}x |",
        f"| | seqlab (encode_batch_fast, Arrow, `tokenize_split`) | {n_tokens / seqlab_s:,.0f} | **{raw_s / seqlab_s:.2f}x** (≥ 0.9); {fast_s / seqlab_s:.2f}x of the fast call |",
        f"| DataModule set-up, SST-2 | first (uncached) | {first:.2f} s | |",
        f"| | second (cached) | {cached:.2f} s | (≤ 1 s) |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default=",".join(ROWS), help=f"comma-separated rows from {','.join(ROWS)}")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("SEQLAB_DATA_DIR", REPO.parent / "shared" / "data")),
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: a shared 2-core machine)"
    )
    parser.add_argument(
        "--batches",
        type=int,
        default=300,
        help="batches per timed run of the loop row (crf: a sixth, softmax: a twentieth)",
    )
    args = parser.parse_args()
    rows = args.only.split(",")
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        parser.error(f"--only: unknown rows {unknown}; choose from {list(ROWS)}")
    torch.set_num_threads(args.threads)
    data_dir = args.data_dir.resolve()
    run = {
        "loop": lambda: row_loop(data_dir, args.batches),
        "bucketing": lambda: row_bucketing(data_dir),
        "crf": lambda: row_crf(data_dir, args.batches // 6),
        "softmax": lambda: row_softmax(data_dir, max(args.batches // 20, 5)),
        "data": lambda: row_data(data_dir),
    }
    table = ["| measurement | variant | tokens/s (or time) | ratio (target) |", "|---|---|---|---|"]
    for row in ROWS:
        if row in rows:
            table += run[row]()
            print("\n".join(table), flush=True)
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs")
    print("\n".join(table))


if __name__ == "__main__":
    main()
