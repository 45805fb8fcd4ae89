"""Batches for `qa train` with at most one example per article.

MultipleNegativesRankingLoss treats every other positive in a batch as a wrong
answer. Two examples of one article in a batch would teach the model that the
article's own translation, or its next step, is wrong for the question: the
opposite of what cross-lingual search needs. Exact duplicate texts (a tag shared
by two articles) are kept apart too, as sentence-transformers' NO_DUPLICATES does.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from sentence_transformers.base.sampler import DefaultBatchSampler


class OneExamplePerArticle(DefaultBatchSampler):
    def __init__(self, dataset, batch_size: int, drop_last: bool, groups: list[str], **kwargs) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last, **kwargs)
        if len(groups) != len(dataset):
            raise ValueError(f"{len(groups)} groups for {len(dataset)} examples")
        self.groups = groups
        self.texts = [tuple(row.values()) for row in dataset]

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        waiting = torch.randperm(len(self.groups), generator=generator).tolist()
        # Greedy: each batch takes the first waiting examples that clash with nothing
        # in it; the rest wait for the next batch. Near the end of an epoch only a few
        # articles remain, so the batch count is capped at len(self) and examples that
        # cannot be placed wait for the next epoch's shuffle.
        for _ in range(len(self)):
            batch, seen_groups, seen_texts, rest = [], set(), set(), []
            for i in waiting:
                clash = self.groups[i] in seen_groups or not seen_texts.isdisjoint(self.texts[i])
                if len(batch) == self.batch_size or clash:
                    rest.append(i)
                    continue
                batch.append(i)
                seen_groups.add(self.groups[i])
                seen_texts.update(self.texts[i])
            waiting = rest
            if len(batch) < 2 or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch


def sampler_for(pair_groups: list[str], triplet_groups: list[str]):
    """The trainer's `batch_sampler` callable: it is called once per dataset (pairs,
    triplets), which are told apart by their columns."""

    def make(dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
        groups = triplet_groups if "negative" in dataset.column_names else pair_groups
        return OneExamplePerArticle(dataset, batch_size, drop_last, groups,
                                    valid_label_columns=valid_label_columns, generator=generator, seed=seed)

    return make
