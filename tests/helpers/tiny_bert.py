"""A tiny BERT and its WordPiece tokenizer, built offline and saved with ``save_pretrained`` (tests only)."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from tokenizers.trainers import WordPieceTrainer

from seqlab.data.synthetic import NegationSentimentSource

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def corpus() -> list[str]:
    texts = NegationSentimentSource(num_train=300, num_validation=1, num_test=1, seed=1).load()["train"][
        "text"
    ]
    words = [
        line.split()[0]
        for line in (Path(__file__).parents[1] / "fixtures" / "tiny.conll").read_text().splitlines()
        if line.strip() and not line.startswith("-DOCSTART-")
    ]
    return list(texts) + [" ".join(words)] * 3


def build_tiny_bert(directory: Path, vocab_size: int = 200, seed: int = 0) -> Path:
    """WordPiece (lowercased, a small vocabulary so that rarer words split into pieces) + a 2-layer BERT."""
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tok = Tokenizer(WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(
        corpus(), WordPieceTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    directory.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(str(directory))
    fast.save_pretrained(str(directory))
    return directory
