"""ONNX export of classification and tagging tasks, through an export-only module that needs no packing.

ONNX (the legacy TorchScript-based exporter as well as the dynamo one) cannot trace ``pack_padded_sequence``,
which `RNNEncoder` and the char-LSTM of `CharEncoder` use so that the recurrence never reads padding. So
`ExportModel` computes the same function on the padded batch instead (see `UnpackedRNN`): each layer and
direction is a one-layer RNN that *shares* the trained module's weights; the backward direction reads each row
reversed within its own length, so padding only ever comes after the real positions. It is checked against the
packed eager model before anything is written, and the exported file is checked against eager with onnxruntime
(when installed) on a batch of other lengths than the one traced.

Exported: classification ``logits`` (B, C); tagging ``scores`` (B, T, C) per token (a CRF's emissions: the
Viterbi decoding stays in Python, `seqlab.models.crf.CRF.decode`). Inputs: ``input_ids`` (B, T) and
``attention_mask`` (B, T), int64, plus what the encoder reads (``char_ids`` (B, T, L), ``token_type_ids`` (B, T)).
Encoders: `RNNEncoder` (lstm / gru / rnn, uni- or bidirectional, stacked, with a cnn or lstm char encoder),
`CNNEncoder`, `EmbeddingEncoder`, and `HFEncoder` (traced as it is).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from seqlab.models.char import CharEncoder
from seqlab.models.encoders.base import EncoderOutput
from seqlab.models.encoders.rnn import RNNEncoder
from seqlab.models.encoders.unpacked import UnpackedRNN

# What the export module must equal before it is exported (it is the same arithmetic, so in practice ~1e-7).
EAGER_TOLERANCE = 1e-5


def task_kind(task: nn.Module) -> str:
    """``classification`` | ``tagging``; a ValueError for tasks that have no single-call output to export."""
    from seqlab.tasks.classification import TextClassificationTask
    from seqlab.tasks.tagging import SequenceTaggingTask

    if isinstance(task, TextClassificationTask):
        return "classification"
    if isinstance(task, SequenceTaggingTask):
        return "tagging"
    raise ValueError(
        f"export supports classification and tagging models; this checkpoint holds a {type(task).__name__} "
        "(a language model's output depends on the state it carries between windows)"
    )


def output_name(task: nn.Module) -> str:
    return "logits" if task_kind(task) == "classification" else "scores"


# ---- the same function as the packed RNN, without packing --------------------------------------------------


def last_states(hidden: Tensor, attention_mask: Tensor, num_directions: int) -> Tensor:
    """(B, T, H) -> (B, H): the forward half at the last real position, the backward half at position 0, i.e. a
    packed RNN's ``h_n`` (as `seqlab.models.pooling.Pooler` ``last``, but rows of length 0, the padded words of the
    char encoder, read position 0 instead of failing)."""
    last = (attention_mask.long().sum(1) - 1).clamp(min=0)  # (B,)
    at_last = hidden.gather(1, last[:, None, None].expand(-1, 1, hidden.size(-1))).squeeze(1)  # (B, H)
    if num_directions == 1:
        return at_last
    fwd, _ = at_last.chunk(2, dim=-1)
    _, bwd = hidden[:, 0].chunk(2, dim=-1)
    return torch.cat([fwd, bwd], dim=-1)


class ExportCharEncoder(nn.Module):
    """`CharEncoder` without packing: the cnn kind traces as it is; the lstm kind runs `UnpackedRNN` over all
    B*T words and takes the forward state at each word's last char and the backward state at its first."""

    def __init__(self, char: CharEncoder):
        super().__init__()
        self.char = char
        self.rnn = UnpackedRNN(char.lstm) if char.kind == "lstm" else None

    def forward(self, char_ids: Tensor) -> Tensor:
        if self.rnn is None:
            return self.char(char_ids)  # (B, T, D)
        flat = char_ids.flatten(0, 1)  # (N, L), N = B*T words
        real = (flat != self.char.pad_id).long()  # (N, L): a prefix of each row
        hidden = self.rnn(self.char.embedding(flat), real)  # (N, L, 2H)
        words = last_states(hidden, real, 2)  # (N, 2H)
        words = words * (real.sum(1, keepdim=True) > 0).to(words.dtype)  # words with no chars: zero
        return words.unflatten(0, char_ids.shape[:2])  # (B, T, D)


class ExportRNNEncoder(nn.Module):
    """`RNNEncoder` (eval mode: no dropout) with `UnpackedRNN` in place of packing; same weights."""

    def __init__(self, encoder: RNNEncoder):
        super().__init__()
        self.embedding = encoder.embedding
        self.char_encoder = (
            ExportCharEncoder(encoder.char_encoder) if encoder.char_encoder is not None else None
        )
        self.rnn = UnpackedRNN(encoder.rnn)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor, char_ids: Tensor | None = None
    ) -> EncoderOutput:
        x = self.embedding(input_ids)  # (B, T, E)
        if self.char_encoder is not None:
            x = torch.cat([x, self.char_encoder(char_ids)], dim=-1)  # (B, T, E + D)
        return EncoderOutput(self.rnn(x, attention_mask), None)  # (B, T, H * D)


def exportable_encoder(encoder: nn.Module) -> nn.Module:
    """The encoder, or a module that computes the same outputs and traces with dynamic batch and time."""
    from seqlab.models.encoders.cnn import CNNEncoder
    from seqlab.models.encoders.embedding import EmbeddingEncoder
    from seqlab.models.encoders.hf import HFEncoder

    if isinstance(encoder, RNNEncoder):
        return ExportRNNEncoder(encoder)
    if isinstance(encoder, CNNEncoder | EmbeddingEncoder | HFEncoder):
        return encoder
    raise ValueError(f"export does not know the encoder {type(encoder).__name__}")


def exported_extra_inputs(encoder: nn.Module) -> tuple[str, ...]:
    """The inputs of the exported graph besides ids and mask: the encoder's ``extra_inputs``, less
    ``token_type_ids`` for HF models that have no token types (DistilBERT's forward refuses them)."""
    names = tuple(encoder.extra_inputs)
    model = getattr(encoder, "model", None)
    if model is not None and not getattr(model.config, "type_vocab_size", 0):
        names = tuple(n for n in names if n != "token_type_ids")
    return names


class ExportModel(nn.Module):
    """The task's inference function with positional tensor inputs, as tracing wants them:
    ``(input_ids, attention_mask, *extra_inputs) -> logits (B, C) | scores (B, T, C)``. Every module is the
    task's own (eval mode), apart from `exportable_encoder`'s rewiring of the same weights."""

    def __init__(self, task: nn.Module):
        super().__init__()
        self.kind = task_kind(task)
        self.encoder = exportable_encoder(task.encoder)
        self.extra_inputs = exported_extra_inputs(task.encoder)
        self.pooler = task.pooler if self.kind == "classification" else None
        self.head = task.head
        self.eval()

    @property
    def input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", *self.extra_inputs]

    def forward(self, input_ids: Tensor, attention_mask: Tensor, *extra: Tensor) -> Tensor:
        out = self.encoder(input_ids, attention_mask, **dict(zip(self.extra_inputs, extra, strict=True)))
        if self.pooler is None:
            return self.head(out.last_hidden_state)  # (B, T, C)
        pooled = self.pooler(out.last_hidden_state, attention_mask, out.pooler_output)  # (B, H)
        return self.head(pooled)  # (B, C)


# ---- inputs and checks -------------------------------------------------------------------------------------


def _vocab_and_pad(encoder: nn.Module) -> tuple[int, int]:
    embedding = getattr(encoder, "embedding", None)
    if embedding is None:  # HFEncoder
        embedding = encoder.model.get_input_embeddings()
        pad = getattr(encoder.model.config, "pad_token_id", None)
    else:
        pad = embedding.padding_idx
    return embedding.num_embeddings, 0 if pad is None else int(pad)


def pad_token_id(task: nn.Module) -> int:
    return _vocab_and_pad(task.encoder)[1]


def example_inputs(
    task: nn.Module, lengths: tuple[int, ...] = (6, 3, 1), seed: int = 0, word_length: int = 5
) -> dict[str, Tensor]:
    """A random batch with rows of the given lengths (padding after), with every input the export module reads
    (``char_ids`` padded to `word_length` chars)."""
    g = torch.Generator().manual_seed(seed)
    vocab, pad = _vocab_and_pad(task.encoder)
    B, T = len(lengths), max(lengths)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()  # (B, T)
    ids = torch.randint(0, vocab, (B, T), generator=g).masked_fill(mask == 0, pad)  # (B, T)
    batch = {"input_ids": ids, "attention_mask": mask}
    for name in exported_extra_inputs(task.encoder):
        if name == "char_ids":
            char = task.encoder.char_encoder
            L = word_length
            word_len = torch.randint(1, L + 1, (B, T, 1), generator=g) * mask.unsqueeze(
                -1
            )  # (B, T, 1), 0 at padding
            chars = torch.randint(1, char.embedding.num_embeddings, (B, T, L), generator=g)
            batch["char_ids"] = chars.masked_fill(torch.arange(L) >= word_len, char.pad_id)  # (B, T, L)
        elif name == "token_type_ids":
            batch["token_type_ids"] = torch.zeros_like(ids)
        else:
            raise ValueError(f"export does not know how to build the encoder input {name!r}")
    return batch


def max_abs_diff(got: Tensor, want: Tensor, attention_mask: Tensor | None = None) -> float:
    """Largest |got - want|; for per-token outputs (B, T, C) only over real positions."""
    got, want = torch.as_tensor(got).float(), torch.as_tensor(want).float()
    if got.shape != want.shape:
        raise ValueError(f"output shape {tuple(got.shape)} != eager {tuple(want.shape)}")
    diff = (got - want).abs()
    if diff.dim() == 3 and attention_mask is not None:
        diff = diff[attention_mask.bool()]
    return float(diff.max()) if diff.numel() else 0.0


@torch.no_grad()
def eager_outputs(task: nn.Module, inputs: Mapping[str, Tensor]) -> Tensor:
    """What the task itself (packed RNNs) computes: logits (B, C) or per-token scores (B, T, C)."""
    return task.eval()(**inputs)


@torch.no_grad()
def check_export_model(task: nn.Module, model: nn.Module, inputs: Mapping[str, Tensor]) -> float:
    """Max |export module - eager task| on `inputs` (real positions); a ValueError above `EAGER_TOLERANCE`."""
    diff = max_abs_diff(model(*inputs.values()), eager_outputs(task, inputs), inputs["attention_mask"])
    if not diff <= EAGER_TOLERANCE:
        raise ValueError(
            f"the export module differs from the trained model by {diff:.2e}; please report this"
        )
    return diff


def dynamic_axes(names: list[str], output: str) -> dict[str, dict[int, str]]:
    axes = {name: {0: "batch", 1: "time"} for name in names}
    if "char_ids" in axes:
        axes["char_ids"][2] = "chars"
    axes[output] = {0: "batch", 1: "time"} if output == "scores" else {0: "batch"}
    return axes


def export_onnx(task: nn.Module, path: str | Path, opset: int = 17) -> float:
    """Write `task` as ONNX to `path`; returns the max |export module - eager| on the traced batch."""
    try:
        import onnx  # noqa: F401  (torch.onnx writes the file with it)
    except ImportError:
        raise ValueError(
            "format=onnx needs the onnx package: pip install onnx onnxruntime (or seqlab[export])"
        ) from None
    task.eval()
    model = ExportModel(task)
    inputs = example_inputs(task)
    diff = check_export_model(task, model, inputs)
    out = output_name(task)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's DeprecationWarning and tracer warnings
        torch.onnx.export(
            model,
            tuple(inputs.values()),
            str(path),
            input_names=model.input_names,
            output_names=[out],
            dynamic_axes=dynamic_axes(model.input_names, out),
            opset_version=opset,
            dynamo=False,
        )
    return diff


def run_onnx(path: str | Path, inputs: Mapping[str, Tensor]) -> Tensor:
    """The exported file's output on `inputs`, by onnxruntime (CPU)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = {i.name for i in session.get_inputs()}
    feed = {k: v.numpy() for k, v in inputs.items() if k in wanted}
    return torch.from_numpy(session.run(None, feed)[0])


def check_onnx(task: nn.Module, path: str | Path, lengths: tuple[int, ...] = (9, 4, 1, 2)) -> float | None:
    """Max |onnxruntime - eager| on a batch of other lengths than the traced one; None without onnxruntime."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return None
    inputs = example_inputs(task, lengths, seed=1)
    return max_abs_diff(run_onnx(path, inputs), eager_outputs(task, inputs), inputs["attention_mask"])
