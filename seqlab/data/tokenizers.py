"""Word-level tokenizer: a thin, picklable wrapper over the `tokenizers` library's WordLevel model.

The vocabulary is fitted on the training split only, and travels with the checkpoint as a JSON string
(`to_str` / `from_str`), so a checkpoint alone can encode new text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from tokenizers.trainers import WordLevelTrainer

PAD, UNK = "<pad>", "<unk>"

# How raw text is cut into words. `whitespace` splits punctuation off (don't -> don ' t);
# `whitespace_split` keeps tokens exactly as written, for corpora that are already tokenized (WikiText).
PRE_TOKENIZERS = {
    "whitespace": pre_tokenizers.Whitespace,
    "whitespace_split": pre_tokenizers.WhitespaceSplit,
}


def _renumbered(tok: Tokenizer, specials: Sequence[str]) -> Tokenizer:
    """`tok` with ids 0..V-1 in the same order. The WordLevel trainer (tokenizers 0.23) gives a special token
    that also occurs in the corpus (WikiText's literal `<unk>`) a second id after the specials and leaves a hole
    at its first, so `vocab_size` would be one short of the largest id + 1 (an embedding IndexError)."""
    vocab = tok.get_vocab()
    if sorted(vocab.values()) == list(range(len(vocab))):
        return tok
    words = sorted(vocab, key=vocab.get)  # order kept: specials first, then by frequency
    out = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token=UNK))
    out.normalizer, out.pre_tokenizer = tok.normalizer, tok.pre_tokenizer
    out.add_special_tokens(list(specials))
    return out


class WordTokenizer:
    """Words -> ids with `<pad>` = 0 and `<unk>` = 1, then any extra special tokens (`<sep>`, `<eos>`)."""

    def __init__(self, tokenizer: Tokenizer):
        self._tok = tokenizer
        vocab = tokenizer.get_vocab()
        if vocab.get(PAD) != 0 or UNK not in vocab:
            raise ValueError(f"a WordTokenizer needs {PAD} at id 0 and an {UNK} token")
        self.pad_token_id = 0
        self.unk_token_id = vocab[UNK]

    @classmethod
    def fit(
        cls,
        texts: Iterable[str] | Iterable[Sequence[str]],
        *,
        lowercase: bool = True,
        min_freq: int = 1,
        max_size: int | None = None,
        pre_tokenizer: str = "whitespace",
        special_tokens: Sequence[str] = (),
        is_pretokenized: bool = False,
    ) -> WordTokenizer:
        """Build the vocabulary from `texts` (strings, or lists of words when `is_pretokenized`).

        `max_size` counts every entry, special tokens included; `min_freq` drops rarer words (they become `<unk>`).
        """
        if pre_tokenizer not in PRE_TOKENIZERS:
            raise ValueError(f"pre_tokenizer={pre_tokenizer!r}: choose one of {sorted(PRE_TOKENIZERS)}")
        specials = [PAD, UNK] + [t for t in special_tokens if t not in (PAD, UNK)]
        tok = Tokenizer(WordLevel(unk_token=UNK))
        if lowercase:
            tok.normalizer = normalizers.Lowercase()
        # Pre-tokenized input (CoNLL tokens) must not be split again, only normalised.
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit() if is_pretokenized else PRE_TOKENIZERS[pre_tokenizer]()
        trainer = WordLevelTrainer(
            vocab_size=max_size if max_size else 2**31 - 1,
            min_frequency=min_freq,
            special_tokens=specials,
            show_progress=False,
        )
        if is_pretokenized:
            # Joining with spaces is safe: the pre-tokenizer above splits on whitespace only,
            # and tokens of pre-tokenized corpora never contain whitespace.
            texts = (" ".join(words) for words in texts)
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(_renumbered(tok, specials))

    # ---- encoding -------------------------------------------------------------------------------------
    def encode(self, text: str | Sequence[str]) -> list[int]:
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str] | Sequence[Sequence[str]]) -> list[list[int]]:
        """Strings, or lists of words (one id per word, never split further)."""
        if len(texts) and not isinstance(texts[0], str):
            # Each word is normalised and looked up on its own, so a sentence keeps exactly one id per word.
            return [[self.token_to_id(w) for w in words] for words in texts]
        return [e.ids for e in self._tok.encode_batch(list(texts), add_special_tokens=False)]

    def token_to_id(self, token: str) -> int:
        if self._tok.normalizer is not None:
            token = self._tok.normalizer.normalize_str(token)
        idx = self._tok.token_to_id(token)
        return self.unk_token_id if idx is None else idx

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self._tok.id_to_token(int(i)) for i in ids]

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def get_vocab(self) -> dict[str, int]:
        return self._tok.get_vocab()

    # ---- persistence ---------------------------------------------------------------------------------
    def to_str(self) -> str:
        return self._tok.to_str()

    @classmethod
    def from_str(cls, data: str) -> WordTokenizer:
        return cls(Tokenizer.from_str(data))

    def save(self, path: str | Path) -> None:
        self._tok.save(str(path))

    @classmethod
    def from_file(cls, path: str | Path) -> WordTokenizer:
        return cls(Tokenizer.from_file(str(path)))

    def __getstate__(self):  # picklable for DataLoader workers and datasets fingerprinting
        return {"json": self.to_str()}

    def __setstate__(self, state):
        self.__init__(Tokenizer.from_str(state["json"]))

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size})"
