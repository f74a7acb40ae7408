"""PlainAttributes behaves as nn.Module's __setattr__ does, and takes the fast path for Lightning's hook names."""

import lightning as L
import pytest
import torch
from torch import nn

from seqlab.tasks.plain_attributes import PlainAttributes


class Plain(L.LightningModule):
    def __init__(self, early=None):
        if early is not None:
            self.early = early  # before nn.Module.__init__
        super().__init__()
        self.w = nn.Parameter(torch.ones(2))
        self.register_buffer("b", torch.zeros(2))
        self.sub = nn.Linear(2, 2)


class Fast(PlainAttributes, Plain):
    pass


def both(**kwargs):
    return Plain(**kwargs), Fast(**kwargs)


@pytest.mark.parametrize("value", ["x", 3, 2.5, True, None])
def test_plain_values_become_attributes(value):
    for m in both():
        m.note = value
        assert m.note is value and m.__dict__["note"] is value
        assert "note" not in m._parameters and "note" not in m._buffers and "note" not in m._modules


@pytest.mark.parametrize("name", ["w", "b", "sub"])
def test_registered_names_raise_the_same_error(name):
    messages = []
    for m in both():
        with pytest.raises(TypeError) as e:
            setattr(m, name, "a string")
        messages.append(str(e.value))
    assert messages[0] == messages[1]


def test_none_unsets_registered_entries_as_nn_module_does():
    plain, fast = both()
    for m in (plain, fast):
        m.w = None
        m.b = None
        m.sub = None
    for m in (plain, fast):
        assert m._parameters["w"] is None and m._buffers["b"] is None and m._modules["sub"] is None
        assert "w" not in m.__dict__ and "b" not in m.__dict__ and "sub" not in m.__dict__
    assert list(plain.state_dict()) == list(fast.state_dict())


def test_set_before_module_init_and_replaced_by_a_module_later():
    for m in both(early="before"):
        assert m.early == "before"
        m.early = nn.Linear(1, 1)  # a plain attribute becomes a submodule
        assert "early" in m._modules and "early" not in m.__dict__


def test_property_setters_still_run():
    for m in both():
        m.automatic_optimization = False  # LightningModule's property
        assert m.automatic_optimization is False and m._automatic_optimization is False


def test_lightning_hook_names_skip_nn_module_setattr(monkeypatch):
    seen = []
    original = nn.Module.__setattr__

    def spy(self, name, value):
        seen.append(name)
        original(self, name, value)

    class Tiny(PlainAttributes, L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(2, 1)

        def training_step(self, batch, batch_idx):
            return self.layer(batch).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    model = Tiny()
    monkeypatch.setattr(nn.Module, "__setattr__", spy)
    trainer = L.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(torch.randn(6, 2), batch_size=2))
    assert trainer.global_step == 3
    assert "_current_fx_name" not in seen  # set ~40 times a step by Lightning: all on the fast path
    assert model._current_fx_name is None
