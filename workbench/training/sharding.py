"""Which examples each process takes: its micro-batches of the training data and its share of the evaluation.

Plain index arithmetic, so it is checked with no model: a global micro-batch holds
``batch_size`` examples per process, and process ``rank`` takes the ``rank``-th share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

__all__ = ["evaluation_batches", "micro_batch_indices", "process_share"]

T = TypeVar("T")


def micro_batch_indices(
    order_of_epoch: Callable[[int], list[int]],
    micro_batches_per_epoch: int,
    batch_size: int,
    *,
    rank: int = 0,
    processes: int = 1,
    start: int = 0,
) -> Iterator[list[int]]:
    """This process's micro-batches, as example indices, from global micro-batch ``start`` on, without end.

    ``order_of_epoch(epoch)`` gives the order of the examples in an epoch (it depends only on
    seed and epoch, so a resumed run picks up where it stopped). Under several processes an
    epoch's last global batch is filled from its start, so no process is ever handed an empty batch.
    """
    size = batch_size * processes
    share = slice(rank * batch_size, (rank + 1) * batch_size)
    index = start
    while True:
        epoch, position = divmod(index, micro_batches_per_epoch)
        order = order_of_epoch(epoch)
        if processes > 1 and len(order) % size:
            order = order + order[: size - len(order) % size]
        for i in range(position, micro_batches_per_epoch):
            yield order[i * size : (i + 1) * size][share]
        index = (epoch + 1) * micro_batches_per_epoch


def evaluation_batches(examples: int, batch_size: int, limit: int | None = None) -> list[range]:
    """The evaluation set in order, as batches of example indices (at most ``limit`` of them)."""
    count = math.ceil(examples / batch_size)
    if limit:
        count = min(count, limit)
    return [range(i * batch_size, min(examples, (i + 1) * batch_size)) for i in range(count)]


def process_share(items: Sequence[T], rank: int, processes: int) -> list[T]:
    """Every ``processes``-th item from ``rank`` on: this process's share, the shares together covering each once."""
    return list(items[rank::processes])
