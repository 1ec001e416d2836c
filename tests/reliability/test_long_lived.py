"""A long-lived kernel: ten training runs and a hundred explain calls in one process.

Resident memory may grow by at most 5% from the end of the second run to the end; threads and
open files come back to where they were.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from workbench.training import TrainConfig, Trainer

if TYPE_CHECKING:
    from workbench.models import ModelBundle


@pytest.mark.timeout(600)
def test_ten_runs_and_a_hundred_explain_calls_leak_nothing(tmp_path: Path, make_tiny: Callable[..., ModelBundle]):
    from tests.conftest import TINY_TEXTS
    from workbench.explain import attention, attribute, fill_mask, logit_lens

    me = psutil.Process()
    bundle = make_tiny("tiny-bert")
    threads, files = threading.active_count(), me.num_fds()
    memory = []
    explained = 0
    for run in range(10):
        config = TrainConfig(
            max_steps=10,
            batch_size=4,
            block_size=16,
            progress=False,
            save_every=5,
            keep_last=1,
            output_dir=str(tmp_path / f"run{run % 2}"),
            learning_rate=3e-3,
        )
        Trainer(bundle, "masked-lm", TINY_TEXTS, eval_data=TINY_TEXTS[:4], config=config).fit()
        for i in range(10):
            text = f"the cat sat on the [MASK] number {run * 10 + i}"
            (fill_mask, logit_lens, attention)[i % 3](bundle, text)
            if i % 5 == 0:
                attribute(bundle, text, method="occlusion")
            explained += 1
        gc.collect()
        memory.append(me.memory_info().rss)
    growth = memory[-1] / memory[1] - 1
    print(
        f"\nresident memory after run 2: {memory[1] / 2**20:.0f} MB, after run 10: {memory[-1] / 2**20:.0f} MB "
        f"({growth:+.1%}); {explained} explain calls"
    )
    assert explained == 100
    assert growth <= 0.05
    assert threading.active_count() <= threads
    assert me.num_fds() <= files
