"""`TokenPerplexity`: exp(mean token loss) over a whole split, from summed loss and token counts (not a mean of
per-batch perplexities), summed across batches and DDP ranks."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class TokenPerplexity(Metric):
    """exp(summed token loss / token count); the sums add up across batches and DDP ranks."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("loss_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, loss_sum: Tensor, count: Tensor | int) -> None:
        self.loss_sum += loss_sum.detach().double()
        self.count += count

    def compute(self) -> Tensor:
        return torch.exp(self.loss_sum / self.count.clamp(min=1)).float()
