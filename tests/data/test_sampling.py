"""BucketSampler and ResumableDataLoader: every row once an epoch, sorted pools, the same order for a seed and
epoch, disjoint equal shards across ranks, and a position that survives a state round trip."""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, SequentialSampler

from seqlab.data.classification import TextClassificationDataModule
from seqlab.data.sampling import BucketSampler, ResumableDataLoader
from seqlab.data.synthetic import NegationSentimentSource

_rng = random.Random(0)
LENGTHS = [_rng.randint(1, 60) for _ in range(1003)]  # 31 full batches of 32 and one of 11


def batches(sampler: BucketSampler, batch_size: int = 32) -> list[list[int]]:
    rows = list(sampler)
    return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]


def test_every_row_once_per_epoch_in_full_batches_and_one_short_batch_last():
    sampler = BucketSampler(LENGTHS, 32, seed=3, pool_batches=4)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        got = batches(sampler)
        assert sorted(i for b in got for i in b) == list(range(len(LENGTHS)))
        assert [len(b) for b in got] == [32] * 31 + [11]
        assert len(sampler) == len(LENGTHS)


def test_batches_are_cut_from_pools_sorted_by_length():
    for batch in batches(BucketSampler(LENGTHS, 32, seed=0, pool_batches=4)):
        lengths = [LENGTHS[i] for i in batch]
        assert lengths == sorted(lengths, reverse=True)
    # One pool holding every row: the batches are consecutive runs of the rows sorted by length.
    got = batches(BucketSampler(LENGTHS, 32, seed=0, pool_batches=1000))
    by_longest = sorted(got, key=lambda b: -LENGTHS[b[0]])
    assert [LENGTHS[i] for b in by_longest for i in b] == sorted(LENGTHS, reverse=True)
    assert got != by_longest  # and the batches themselves are shuffled


def test_padding_is_a_small_share_of_bucketed_batches_and_a_large_one_of_random_batches():
    def padding(got):
        padded = sum(len(b) * max(LENGTHS[i] for i in b) for b in got)
        return 1 - sum(LENGTHS) / padded

    bucketed = padding(batches(BucketSampler(LENGTHS, 32, seed=0)))
    shuffled = torch.randperm(len(LENGTHS), generator=torch.Generator().manual_seed(0)).tolist()
    random_ = padding([shuffled[i : i + 32] for i in range(0, len(shuffled), 32)])
    assert bucketed < 0.05 < 0.3 < random_


def test_same_seed_and_epoch_same_order_other_epochs_and_seeds_differ():
    a, b = BucketSampler(LENGTHS, 32, seed=5), BucketSampler(LENGTHS, 32, seed=5)
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)
    assert list(a) != list(BucketSampler(LENGTHS, 32, seed=6))


@pytest.mark.parametrize("n", [32 * 8, 1003])  # full batches only, and a short batch last
def test_two_ranks_get_disjoint_batches_of_equal_count_covering_every_row(n):
    lengths = LENGTHS[:n]
    shards = [batches(BucketSampler(lengths, 32, seed=1, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) > 0
    rows = [[i for b in s for i in b] for s in shards]
    assert set(rows[0]) | set(rows[1]) == set(range(n))
    assert not set(rows[0]) & set(rows[1])  # (1003 rows: 31 full batches and a short one, an even count)
    # Every batch of the single-process epoch goes to exactly one rank.
    single = batches(BucketSampler(lengths, 32, seed=1))
    assert sorted(map(sorted, shards[0] + shards[1])) == sorted(map(sorted, single))


def test_an_odd_batch_count_repeats_full_batches_or_drops_them():
    lengths = LENGTHS[: 32 * 7]  # 7 batches over 2 ranks
    padded = [batches(BucketSampler(lengths, 32, seed=1, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(padded[0]) == len(padded[1]) == 4
    rows = [i for s in padded for b in s for i in b]
    assert len(rows) == 32 * 8 and set(rows) == set(range(32 * 7))  # one batch seen twice
    dropped = [batches(BucketSampler(lengths, 32, 1, num_replicas=2, rank=r, drop_last=True)) for r in (0, 1)]
    assert len(dropped[0]) == len(dropped[1]) == 3
    assert not {i for b in dropped[0] for i in b} & {i for b in dropped[1] for i in b}


def test_lightning_leaves_the_sampler_alone_under_ddp():
    # Lightning wraps a loader's sampler in its own DistributedSampler unless it already is one.
    assert isinstance(BucketSampler(LENGTHS, 32), DistributedSampler)


def loader(seed: int) -> ResumableDataLoader:
    return ResumableDataLoader(
        list(range(len(LENGTHS))), batch_size=32, sampler=BucketSampler(LENGTHS, 32, seed)
    )


def test_position_restored_after_a_state_round_trip():
    first = loader(seed=11)
    first.sampler.set_epoch(4)
    it = iter(first)
    seen = [next(it).tolist() for _ in range(5)]
    state = first.state_dict()
    assert state == {"seed": 11, "epoch": 4, "batches_done": 5}
    rest = [b.tolist() for b in it]

    resumed = loader(seed=999)  # a fresh process draws another seed: the state's wins
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(4)  # what Lightning does before the epoch
    assert [b.tolist() for b in resumed] == rest
    assert resumed.state_dict()["batches_done"] == 5 + len(rest) == len(seen) + len(rest)
    # The skip is for one iteration only: the next pass is the whole epoch again.
    assert len(list(resumed)) == len(seen) + len(rest)


def test_a_state_saved_at_the_end_of_an_epoch_skips_nothing_in_the_next():
    done = loader(seed=1)
    n = len(list(done))
    resumed = loader(seed=1)
    resumed.load_state_dict(done.state_dict())
    assert done.state_dict()["batches_done"] == n
    resumed.sampler.set_epoch(1)
    assert len(list(resumed)) == n


def datamodule(**kwargs) -> TextClassificationDataModule:
    dm = TextClassificationDataModule(NegationSentimentSource(300, 40, 40, seed=0), batch_size=16, **kwargs)
    dm.setup("fit")
    return dm


def test_training_batches_are_bucketed_by_default_and_random_with_bucketing_false():
    bucketed = datamodule().train_dataloader()
    assert isinstance(bucketed, ResumableDataLoader) and isinstance(bucketed.sampler, BucketSampler)
    for batch in bucketed:
        lengths = batch["lengths"].tolist()
        assert lengths == sorted(lengths, reverse=True)
    plain = datamodule(bucketing=False).train_dataloader()
    assert type(plain) is DataLoader and not isinstance(plain.sampler, BucketSampler)


@pytest.mark.parametrize("key, value", [("bucket_pool", 0), ("batch_size", 0)])
def test_sizes_below_one_name_the_key(key, value):
    with pytest.raises(ValueError, match=f"data.{key}={value}: must be >= 1"):
        TextClassificationDataModule(NegationSentimentSource(10, 5, 5), **{key: value})


def test_the_loader_also_takes_the_sequential_sampler_lightning_swaps_in_to_overfit():
    rows = list(range(10))
    loader = ResumableDataLoader(rows, batch_size=4, sampler=SequentialSampler(rows))
    assert [b.tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert loader.state_dict() == {}
    loader.load_state_dict({})
