"""Word-level tokenizer: a thin, picklable wrapper over the `tokenizers` library's WordLevel model.

The vocabulary is fitted on the training split only (`FitWordTokenizer`, ``data/tokenizer=word``), and travels
with the checkpoint as a JSON string (`to_str` / `from_str`), so a checkpoint alone can encode new text.

Every seqlab tokenizer (this one and `seqlab.data.hf_tokenizer.HFTokenizer`) offers what the DataModules use:
``pad_token_id``, ``vocab_size``, ``encode_texts`` (texts or text pairs -> ids), ``encode_words`` (pre-split words
-> ids and the word each id belongs to), and ``state()`` for the checkpoint (`tokenizer_from_state` reads it back).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from tokenizers.trainers import WordLevelTrainer

PAD, UNK = "<pad>", "<unk>"
SEP = "<sep>"  # joins the two texts of a pair, so an RNN reads "premise <sep> hypothesis"

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


def truncate_pair(a: list, b: list, budget: int) -> tuple[list, list]:
    """Shorten the longer of the two until both fit in `budget` tokens (HF's ``longest_first``)."""
    la, lb = len(a), len(b)
    while la + lb > budget:
        if la >= lb:
            la -= 1
        else:
            lb -= 1
    return a[:la], b[:lb]


def cut_to(ids: list[list[int]], max_length: int | None) -> tuple[list[list[int]], list[bool]]:
    """Each row cut to `max_length` ids (None: no cap), and which rows were cut; rows that fit are not copied."""
    if not max_length:
        return ids, [False] * len(ids)
    cut = [len(s) > max_length for s in ids]
    return [s[:max_length] if c else s for s, c in zip(ids, cut, strict=True)], cut


class WordTokenizer:
    """Words -> ids with `<pad>` = 0 and `<unk>` = 1, then any extra special tokens (`<sep>`, `<eos>`)."""

    def __init__(self, tokenizer: Tokenizer):
        self._tok = tokenizer
        vocab = tokenizer.get_vocab()
        if vocab.get(PAD) != 0 or UNK not in vocab:
            raise ValueError(f"a WordTokenizer needs {PAD} at id 0 and an {UNK} token")
        self.pad_token_id = 0
        self.unk_token_id = vocab[UNK]

    splits_words = False  # one id per word: a word is never cut into pieces

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
        tok.pre_tokenizer = (
            pre_tokenizers.WhitespaceSplit() if is_pretokenized else PRE_TOKENIZERS[pre_tokenizer]()
        )
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
        # encode_batch_fast (tokenizers >= 0.20) skips the character offsets, which ids never need.
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)
        return [e.ids for e in encode(list(texts), add_special_tokens=False)]

    def encode_texts(
        self, texts: Sequence[str], pairs: Sequence[str] | None = None, max_length: int | None = None
    ) -> tuple[dict[str, list[list[int]]], list[bool]]:
        """``{"input_ids": ...}`` for texts, or pairs joined as ``text <sep> pair`` (the longer one shortened first),
        cut to `max_length` ids (None: no cap); and which rows were cut."""
        ids = self.encode_batch(texts)
        if pairs is not None:
            sep = self.token_to_id(SEP)
            if sep == self.unk_token_id:
                raise ValueError(
                    f"text pairs need the {SEP} token in the vocabulary: fit the tokenizer with pairs"
                )
            second = self.encode_batch(pairs)
            budget = max_length - 1 if max_length else None  # one slot for <sep>
            cut, joined = [], []
            for a, b in zip(ids, second, strict=True):
                cut.append(budget is not None and len(a) + len(b) > budget)
                if budget is not None:
                    a, b = truncate_pair(a, b, budget)
                joined.append(a + [sep] + b)
            return {"input_ids": joined}, cut
        ids, cut = cut_to(ids, max_length)
        return {"input_ids": ids}, cut

    def encode_words(
        self, sentences: Sequence[Sequence[str]], max_length: int | None = None
    ) -> tuple[dict[str, list[list[int]]], list[list[int | None]], list[bool]]:
        """One id per word (words are never split): ids, the word index of each id, which rows were cut."""
        ids = self.encode_batch(sentences)
        ids, cut = cut_to(ids, max_length)
        return {"input_ids": ids}, [list(range(len(s))) for s in ids], cut

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
    def state(self) -> str:
        """What a checkpoint stores (`tokenizer_from_state` reads it back)."""
        return self.to_str()

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


class FitWordTokenizer:
    """``data/tokenizer=word``: fit a `WordTokenizer` on the training split.

    Args: lowercase, min_freq, max_size, pre_tokenizer: see `WordTokenizer.fit`.
    """

    def __init__(
        self,
        lowercase: bool = True,
        min_freq: int = 1,
        max_size: int | None = None,
        pre_tokenizer: str = "whitespace",
    ):
        if pre_tokenizer not in PRE_TOKENIZERS:
            raise ValueError(
                f"data.tokenizer.pre_tokenizer={pre_tokenizer!r}: choose one of {sorted(PRE_TOKENIZERS)}"
            )
        self.lowercase, self.min_freq, self.max_size, self.pre_tokenizer = (
            lowercase,
            min_freq,
            max_size,
            pre_tokenizer,
        )

    def __call__(
        self, corpus, *, is_pretokenized: bool = False, special_tokens: Sequence[str] = ()
    ) -> WordTokenizer:
        """`corpus()` gives the training texts (or word lists): called here, because only fitting needs them."""
        return WordTokenizer.fit(
            corpus(),
            lowercase=self.lowercase,
            min_freq=self.min_freq,
            max_size=self.max_size,
            pre_tokenizer=self.pre_tokenizer,
            special_tokens=special_tokens,
            is_pretokenized=is_pretokenized,
        )


def tokenizer_from_state(state):
    """The tokenizer a checkpoint stored: a JSON string (`WordTokenizer`) or an HF tokenizer's files."""
    if isinstance(state, str):
        return WordTokenizer.from_str(state)
    from seqlab.data.hf_tokenizer import HFTokenizer

    return HFTokenizer.from_state(state)
