"""Optimizer groups (no weight decay on vectors) and HF schedules stepped per optimizer step."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import pytest
import torch

from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.tasks.classification import TextClassificationTask
from seqlab.tasks.optim import build_optimizers, hf_scheduler


def task(scheduler=None, interval=None):
    t = TextClassificationTask(
        RNNEncoder(12, embed_dim=4, hidden_size=4),
        num_labels=2,
        optimizer=partial(torch.optim.AdamW, lr=1.0, weight_decay=0.1),
        scheduler=scheduler,
        scheduler_interval=interval,
    )
    t._trainer = SimpleNamespace(estimated_stepping_batches=100)  # what Lightning gives configure_optimizers
    return t


def test_no_weight_decay_on_biases_and_vectors():
    t = task()
    opt = build_optimizers(t, t.optimizer)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decayed["params"]) and all(p.dim() == 1 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(t.parameters()))


def test_hf_schedule_warmup_ratio_and_steps():
    t = task(partial(hf_scheduler, name="linear", warmup_ratio=0.1))
    conf = t.configure_optimizers()
    sched = conf["lr_scheduler"]["scheduler"]
    assert conf["lr_scheduler"]["interval"] == "step"  # chosen because the schedule counts optimizer steps
    lrs = []
    for _ in range(100):
        lrs.append(sched.get_last_lr()[0])
        conf["optimizer"].step()
        sched.step()
    assert lrs[0] == 0.0 and lrs[10] == pytest.approx(1.0) and lrs[5] == pytest.approx(0.5)
    assert lrs[55] == pytest.approx(0.5) and sched.get_last_lr()[0] == pytest.approx(0.0)
    t = task(partial(hf_scheduler, name="constant_with_warmup", warmup_steps=4, warmup_ratio=0.5))
    sched = t.configure_optimizers()["lr_scheduler"]["scheduler"]
    for _ in range(4):
        sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(1.0)  # warmup_steps wins over warmup_ratio


def test_bad_schedule_settings_are_named():
    with pytest.raises(ValueError, match="model.scheduler.name='linearr'"):
        task(partial(hf_scheduler, name="linearr")).configure_optimizers()
    with pytest.raises(
        ValueError, match="scheduler_interval=epoch, but this schedule counts optimizer steps"
    ):
        task(partial(hf_scheduler), interval="epoch").configure_optimizers()


@pytest.mark.parametrize(
    "make, fused",
    [
        (partial(torch.optim.AdamW, lr=1.0, fused=None), True),  # null in the config: on where supported
        (partial(torch.optim.Adam, lr=1.0), True),
        (partial(torch.optim.SGD, lr=1.0, momentum=0.9), True),
        (partial(torch.optim.AdamW, lr=1.0, fused=False), False),  # the config turned it off
        (partial(torch.optim.AdamW, lr=1.0, foreach=True), None),  # the user chose another implementation
        (partial(torch.optim.RMSprop, lr=1.0), None),  # no fused kernel for it: left to torch
    ],
)
def test_fused_kernels_where_torch_has_them_unless_the_config_says_otherwise(make, fused):
    t = task()
    opt = build_optimizers(t, make)
    assert opt.defaults.get("fused") == fused


def test_a_fused_step_equals_the_default_step():
    results = []
    for fused in (False, None):
        torch.manual_seed(0)
        t = task()
        opt = build_optimizers(t, partial(torch.optim.AdamW, lr=0.1, weight_decay=0.1, fused=fused))
        for _ in range(3):
            opt.zero_grad()
            t(torch.tensor([[1, 2, 3], [4, 5, 0]]), torch.tensor([[1, 1, 1], [1, 1, 0]])).sum().backward()
            opt.step()
        results.append(torch.cat([p.detach().flatten() for p in t.parameters()]))
    torch.testing.assert_close(results[0], results[1], rtol=1e-5, atol=1e-6)
