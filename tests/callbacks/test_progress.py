"""seqlab's RichProgressBar gathers the logged metrics once per redraw during training, and exactly at epoch ends."""

from types import SimpleNamespace

import lightning as L
import rich.console
import torch
from lightning.pytorch.callbacks import RichProgressBar as LightningRichProgressBar

from seqlab.callbacks import progress
from seqlab.callbacks.progress import RichProgressBar


class Logging(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        self.log("batch", float(batch_idx), prog_bar=True, on_step=True, on_epoch=False)
        return self.layer(batch).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(bar, batches=20, epochs=2):
    calls = []
    original = LightningRichProgressBar.get_metrics

    def counted(self, trainer, pl_module):
        metrics = original(self, trainer, pl_module)
        calls.append(metrics.get("batch"))
        return metrics

    LightningRichProgressBar.get_metrics = counted
    try:
        trainer = L.Trainer(
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            callbacks=[bar],
        )
        trainer.fit(Logging(), torch.utils.data.DataLoader(torch.randn(batches, 2), batch_size=1))
    finally:
        LightningRichProgressBar.get_metrics = original
    return calls


def test_metrics_are_gathered_once_per_redraw_and_fresh_at_epoch_end():
    bar = RichProgressBar(refresh_rate=1)  # one redraw a second: 20 tiny batches fit in one
    calls = fit(bar)
    lightnings = fit(LightningRichProgressBar(refresh_rate=1))
    assert len(lightnings) >= 2 * 20  # Lightning's own: every batch
    assert len(calls) <= 2 * 3  # per epoch: the first batch, the epoch end (and a redraw falling due)
    assert bar._metrics["batch"] == 19.0  # the last batch's value, read at the epoch's end
    assert calls[-1] == 19.0


def test_an_overdue_redraw_gathers_again(monkeypatch):
    clock = iter(range(0, 10**6, 2))  # two seconds pass between batches: every batch is past its redraw
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    bar = RichProgressBar(refresh_rate=1)
    calls = fit(bar, batches=5, epochs=1)
    assert calls[:5] == [0.0, 1.0, 2.0, 3.0, 4.0]  # fresh values at every batch, as Lightning's


def test_redraws_at_the_configured_rate_only_where_seen():
    bar = RichProgressBar(refresh_rate=4)
    seen = SimpleNamespace(is_jupyter=False, is_terminal=True, is_dumb_terminal=False)
    for console, rate in [
        (None, 4),
        (seen, 4),
        (SimpleNamespace(is_jupyter=True, is_terminal=False, is_dumb_terminal=False), 4),
        (SimpleNamespace(is_jupyter=False, is_terminal=True, is_dumb_terminal=True), 1),
        (SimpleNamespace(is_jupyter=False, is_terminal=False, is_dumb_terminal=False), 1),  # a file or a pipe
    ]:
        bar._console = console
        assert bar.refresh_rate == rate
    bar = RichProgressBar(refresh_rate=0)
    bar._console = SimpleNamespace(is_jupyter=False, is_terminal=False, is_dumb_terminal=False)
    assert bar.refresh_rate == 0 and not bar.is_enabled  # 0 disables the bar, as in Lightning


def test_a_run_into_a_file_redraws_once_a_second(monkeypatch):
    monkeypatch.setattr(rich.console.Console, "is_terminal", property(lambda self: False))
    bar = RichProgressBar(refresh_rate=4)
    fit(bar, batches=2, epochs=1)
    assert bar.progress.live.refresh_per_second == 1
