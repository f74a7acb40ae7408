"""CRF: a linear-chain conditional random field over per-token tag scores (Lafferty et al. 2001; Lample et al. 2016).

The score of a tag path y for emissions e is
    start[y_0] + sum_t e[t, y_t] + sum_{t>0} trans[y_{t-1}, y_t] + end[y_{last}],
and training minimises -log p(y | e) = log Z(e) - score(y), with Z summed over all paths by the forward algorithm.
Masks are prefix masks (each row: real tokens, then padding); every row needs at least one real token.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqlab.labels import IGNORE_INDEX  # what `decode` writes at padded positions


class CRF(nn.Module):
    """Args:
    num_tags: C, the number of tags (the task's ``num_labels``).
    Parameters: ``start_transitions`` (C,), ``end_transitions`` (C,), ``transitions`` (C, C) with
    ``transitions[i, j]`` the score of tag i followed by tag j.
    """

    def __init__(self, num_tags: int):
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"CRF needs num_tags >= 1, got {num_tags}")
        self.num_tags = num_tags
        # Small random init, as pytorch-crf does: zeros would also train, but start every path equal.
        self.start_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))

    def forward(self, emissions: Tensor, tags: Tensor, mask: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Negative log-likelihood of `tags`, averaged over the batch.

        emissions (B, T, C); tags (B, T), any value at padded positions (-100 is fine); mask (B, T) bool;
        lengths (B,): ``mask.sum(1)`` when the caller has it already (any device), else summed here.
        """
        mask = self._check(emissions, mask)
        tags = tags.masked_fill(~mask, 0)  # padded positions are never read, but must be valid indices
        lengths = self._lengths(mask, lengths)
        return (self._log_partition(emissions, mask) - self._score(emissions, tags, mask, lengths)).mean()

    def _check(self, emissions: Tensor, mask: Tensor) -> Tensor:
        if emissions.dim() != 3 or emissions.size(-1) != self.num_tags:
            raise ValueError(f"emissions must be (B, T, {self.num_tags}), got {tuple(emissions.shape)}")
        if mask.shape != emissions.shape[:2]:
            raise ValueError(f"mask {tuple(mask.shape)} does not match emissions {tuple(emissions.shape)}")
        mask = mask.bool()
        if not bool(mask[:, 0].all()):
            raise ValueError("CRF: every sequence needs a real first token (length >= 1, prefix mask)")
        return mask

    @staticmethod
    def _lengths(mask: Tensor, lengths: Tensor | None) -> Tensor:
        """(B,) real positions of each row, on the mask's device."""
        return mask.sum(1) if lengths is None else lengths.to(mask.device, non_blocking=True)

    def _score(self, emissions: Tensor, tags: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        """score(y) of the given paths: (B,)."""
        B, T, _ = emissions.shape
        m = mask.to(emissions.dtype)  # (B, T)
        emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)  # (B, T): e[t, y_t]
        trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1): trans[y_{t-1}, y_t]
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)  # (B,) tag at the last real token
        return (
            self.start_transitions[tags[:, 0]]
            + (emit * m).sum(1)
            + (trans * m[:, 1:]).sum(1)
            + self.end_transitions[last]
        )

    def _log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Z: (B,), by the forward algorithm in log space."""
        alpha = self.start_transitions + emissions[:, 0]  # (B, C): log-sum over paths ending in each tag
        for t in range(1, emissions.size(1)):
            # (B, C, 1) + (C, C) + (B, 1, C) -> (B, C_prev, C_next), summed over C_prev
            nxt = torch.logsumexp(alpha.unsqueeze(2) + self.transitions + emissions[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)  # padded steps carry alpha unchanged
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Viterbi: the best tag path of each row, (B, T) long, with -100 at padded positions.
        `lengths` (B,): ``mask.sum(1)``, when the caller has it already."""
        mask = self._check(emissions, mask)
        B, T, _ = emissions.shape
        score = self.start_transitions + emissions[:, 0]  # (B, C): best path score ending in each tag
        backpointers = []  # T-1 tensors (B, C): best previous tag for each current tag
        for t in range(1, T):
            best, prev = (score.unsqueeze(2) + self.transitions).max(dim=1)  # (B, C_next) each
            backpointers.append(prev)
            score = torch.where(mask[:, t].unsqueeze(1), best + emissions[:, t], score)
        cur = (score + self.end_transitions).argmax(dim=1)  # (B,) tag at each row's last real token
        lengths = self._lengths(mask, lengths)  # (B,)
        out = torch.full((B, T), IGNORE_INDEX, dtype=torch.long, device=emissions.device)
        for t in range(T - 1, -1, -1):
            real = t < lengths  # (B,); for t >= length, `cur` still holds the last real token's tag
            out[:, t] = torch.where(real, cur, out[:, t])
            if t > 0:
                cur = torch.where(real, backpointers[t - 1].gather(1, cur.unsqueeze(1)).squeeze(1), cur)
        return out

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"
