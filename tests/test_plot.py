"""`seqlab.plot`: learning curves from run folders, on fake CSVLogger files (sparse rows) and one real run."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from seqlab.cli import UsageError, run_command
from seqlab.plot import (
    best_index,
    best_point,
    draw_curves,
    expand_runs,
    infer_mode,
    load_run,
    main,
    read_metrics,
    run_labels,
    series,
    train_loss,
)

pytest.importorskip("matplotlib")

COLUMNS = [
    "epoch",
    "lr-Adam",
    "step",
    "test/acc",
    "test/loss",
    "train/acc",
    "train/loss_epoch",
    "train/loss_step",
    "val/acc",
    "val/loss",
]
NOT_A_RUN = "no csv/metrics.csv; is it a seqlab run folder (outputs/<date>/<time>)?"


def write_run(
    run_dir: Path,
    val: list[list[tuple[float, float]]],
    train: list[float],
    steps_per_epoch: int = 100,
    monitor: str = "val/acc",
    best_score: float | None = None,
    overrides: list[str] | None = None,
) -> Path:
    """A run folder as `seqlab.train.run` leaves it. ``metrics.csv`` has Lightning's sparse rows: an LR row without
    an epoch, train-step rows, one row per validation (``val[e]``: (acc, loss) per validation in epoch e, evenly
    spaced), an end-of-epoch train row, and a test row after fit with an epoch of its own."""
    rows = []
    for epoch, (val_rows, loss) in enumerate(zip(val, train, strict=True)):
        first = epoch * steps_per_epoch
        rows.append({"lr-Adam": 0.003, "step": first})
        rows.append({"epoch": epoch, "step": first + 19, "train/loss_step": loss * 1.5})
        for k, (acc, vloss) in enumerate(val_rows, start=1):
            step = first + k * steps_per_epoch // len(val_rows) - 1
            rows.append({"epoch": epoch, "step": step, "val/acc": acc, "val/loss": vloss})
        rows.append(
            {"epoch": epoch, "step": first + steps_per_epoch - 1, "train/acc": 0.5, "train/loss_epoch": loss}
        )
    rows.append(
        {"epoch": len(train), "step": len(train) * steps_per_epoch, "test/acc": 0.9, "test/loss": 0.3}
    )
    (run_dir / "csv").mkdir(parents=True)
    with open(run_dir / "csv" / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    summary = {
        "monitor": monitor,
        "best_score": best_score if best_score is not None else math.nan,
        "best_model_path": str(run_dir / "checkpoints" / "epoch001-step000200.ckpt"),
        "output_dir": str(run_dir),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    if overrides is not None:
        (run_dir / ".hydra").mkdir()
        (run_dir / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    return run_dir


def three_epochs(run_dir: Path, **kwargs) -> Path:
    """val/acc 0.7, 0.9, 0.8 and val/loss 0.6, 0.3, 0.4: the best epoch is the second by either metric."""
    return write_run(run_dir, val=[[(0.7, 0.6)], [(0.9, 0.3)], [(0.8, 0.4)]], train=[0.8, 0.4, 0.2], **kwargs)


def assert_png(path: Path) -> None:
    import matplotlib.image

    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 400 and pixels.std() > 0.05  # drawn on, not blank


# ------------------------------------------------------------ pure functions


def test_best_index_by_mode_first_of_ties_nan_ignored():
    assert best_index([0.5, 0.9, 0.9, 0.7], "max") == 1  # ModelCheckpoint keeps the first of equal values
    assert best_index([0.6, 0.4, 0.4, 0.5], "min") == 1
    assert best_index([math.nan, 3.0, 2.0, math.nan], "min") == 2
    assert best_index([math.nan], "max") is None and best_index([], "min") is None
    with pytest.raises(ValueError, match="min or max"):
        best_index([1.0], "best")


@pytest.mark.parametrize(
    ("monitor", "mode"),
    [
        ("val/acc", "max"),
        ("val/f1", "max"),
        ("val/loss", "min"),
        ("val/ppl", "min"),
        ("train/loss", "min"),
        (None, "max"),
    ],
)
def test_infer_mode_from_the_metric_name(monitor, mode):
    assert infer_mode(monitor) == mode


def test_sparse_rows_aggregate_by_epoch(tmp_path):
    run = three_epochs(tmp_path / "run")
    rows = read_metrics(run / "csv" / "metrics.csv")
    assert train_loss(rows) == [(1.0, 0.8), (2.0, 0.4), (3.0, 0.2)]  # train/loss_epoch, not the step values
    assert series(rows, "val/acc") == [(1.0, 0.7), (2.0, 0.9), (3.0, 0.8)]  # LR and test rows ignored
    assert series(rows, "val/f1") == []


def test_train_loss_falls_back_to_train_loss_then_step_means():
    rows = [{"epoch": 0, "step": 9, "train/loss": 0.5}, {"epoch": 1, "step": 19, "train/loss": 0.25}]
    assert train_loss(rows) == [(1.0, 0.5), (2.0, 0.25)]
    rows = [{"epoch": 0, "step": 4, "train/loss_step": 1.0}, {"epoch": 0, "step": 9, "train/loss_step": 0.5}]
    assert train_loss(rows) == [(1.0, 0.75)]


def test_mid_epoch_validation_sits_at_its_fraction_of_the_epoch(tmp_path):
    run = write_run(
        tmp_path / "run", val=[[(0.6, 0.7), (0.8, 0.5)], [(0.9, 0.3), (0.85, 0.35)]], train=[0.6, 0.3]
    )
    rows = read_metrics(run / "csv" / "metrics.csv")
    # 100 steps an epoch, validated after steps 49 and 99 (and 149, 199)
    assert series(rows, "val/acc") == [(0.5, 0.6), (1.0, 0.8), (1.5, 0.9), (2.0, 0.85)]
    assert best_point(series(rows, "val/acc"), "max") == (1.5, 0.9)
    assert best_point(series(rows, "val/loss"), "min") == (1.5, 0.3)


def test_best_point_prefers_the_summary_score():
    points = [(1.0, 0.7), (2.0, 0.9), (3.0, 0.9), (4.0, 0.95)]
    assert best_point(points, "max") == (4.0, 0.95)
    assert best_point(points, "max", best_score=0.9) == (
        2.0,
        0.9,
    )  # e.g. the checkpoint chosen before epoch 4
    assert best_point(points, "max", best_score=math.nan) == (4.0, 0.95)
    assert best_point([], "max") is None


@pytest.mark.parametrize(("monitor", "best"), [("val/acc", (2.0, 0.9)), ("val/loss", (2.0, 0.3))])
def test_load_run_marks_the_best_epoch_for_max_and_min_metrics(tmp_path, monitor, best):
    run = load_run(
        three_epochs(tmp_path / "run", monitor=monitor)
    )  # no best_score: chosen by the inferred mode
    assert run.mode == infer_mode(monitor)
    assert best_point(run.monitored, run.mode, run.best_score) == best


def test_labels_are_the_overrides_that_differ(tmp_path):
    a = load_run(three_epochs(tmp_path / "a", overrides=["+experiment=lstm", "model.encoder.hidden_size=16"]))
    b = load_run(three_epochs(tmp_path / "b", overrides=["+experiment=lstm", "model.encoder.hidden_size=32"]))
    c = load_run(three_epochs(tmp_path / "c"))
    assert run_labels([a, b]) == ["model.encoder.hidden_size=16", "model.encoder.hidden_size=32"]
    assert run_labels([a]) == ["+experiment=lstm model.encoder.hidden_size=16"]
    assert run_labels([c]) == [f"{tmp_path.name}/c"] and run_labels([a, c])[1] == "c"


# ------------------------------------------------------------ drawing and the command


def test_draw_one_run(tmp_path):
    run = three_epochs(tmp_path / "run", best_score=0.9)
    path = draw_curves([run])
    assert path == run / "curves.png"
    assert_png(path)


def test_overlay_two_runs_into_their_common_folder(tmp_path):
    a = three_epochs(tmp_path / "runs" / "a", monitor="val/loss", best_score=0.3)
    b = write_run(tmp_path / "runs" / "b", val=[[(0.6, 0.7), (0.8, 0.5)]], train=[0.6])
    assert_png(draw_curves([a, b]))
    assert (tmp_path / "runs" / "curves.png").is_file()
    out = draw_curves([a, b], output=tmp_path / "figs" / "both.png")
    assert out == tmp_path / "figs" / "both.png" and out.is_file()


def test_multirun_folder_expands_to_its_jobs(tmp_path, capsys):
    sweep = tmp_path / "multirun" / "2026-01-01" / "12-00-00"
    for job in ("0", "1", "10", "2"):
        three_epochs(sweep / job, overrides=["+experiment=lstm", f"seed={job}"])
    (sweep / "3").mkdir()  # a job that failed before logging anything
    (sweep / "multirun.yaml").write_text("{}\n")
    assert expand_runs([sweep]) == [sweep / j for j in ("0", "1", "2", "10")]
    assert "skipping" in capsys.readouterr().err

    main([str(sweep)])
    assert capsys.readouterr().out.strip() == str(sweep / "curves.png")
    assert_png(sweep / "curves.png")
    main([str(sweep / "0"), f"output={tmp_path / 'job0.png'}"])
    assert (tmp_path / "job0.png").is_file()


def test_usage_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no run folder given"):
        main([])
    with pytest.raises(UsageError) as e:
        main([str(tmp_path / "empty")])
    assert str(e.value) == f"{tmp_path / 'empty'}: {NOT_A_RUN}"
    with pytest.raises(UsageError, match="no such folder"):
        main([str(tmp_path / "missing")])
    with pytest.raises(FileNotFoundError, match="no csv/metrics.csv"):
        draw_curves([tmp_path / "empty"])

    run = three_epochs(tmp_path / "run")
    with pytest.raises(SystemExit) as exit_:
        run_command("plot", main, [str(run), "ouptut=x.png"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert err.startswith("seqlab plot: error: unknown key 'ouptut'; did you mean output?")


def test_real_lightning_run(tmp_path):
    """What `run(cfg)` really writes: CSVLogger rows, summary.json (about 15 s)."""
    from seqlab.train import run
    from tests.conftest import compose_cfg

    summary = run(
        compose_cfg(
            "+experiment=lstm",
            "trainer.max_epochs=2",
            "callbacks.rich_progress_bar=null",
            output_dir=tmp_path,
        )
    )
    curves = load_run(tmp_path)
    assert curves.monitor == summary["monitor"] == "val/acc"
    assert [x for x, _ in curves.train_loss] == [1.0, 2.0] and [x for x, _ in curves.val_loss] == [1.0, 2.0]
    x, value = best_point(curves.monitored, curves.mode, curves.best_score)
    assert value == pytest.approx(summary["best_score"])
    assert (
        f"epoch{int(x) - 1:03d}" in Path(summary["best_model_path"]).name
    )  # the starred point is the checkpoint's
    assert_png(draw_curves([tmp_path]))
