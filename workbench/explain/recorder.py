"""``ProbeRecorder``: what the model predicts for a few probe sentences, step by step while it trains.

Example::

    recorder = ProbeRecorder([("To be, or not to [MASK].", "be"), ("The cat sat on the [MASK].", "mat")], every=50)
    Trainer(bundle, "masked-lm", corpus, callbacks=[recorder]).fit()
    recorder.timeline[-1]["probes"][0]["rank"]     # the expected token's rank at the last record
    recorder.series("To be, or not to [MASK].")    # steps, probabilities and ranks of "be"
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.errors import ProbeError
from workbench.explain.inputs import display_token, token_id
from workbench.explain.output_head import output_vocabulary
from workbench.explain.probe import predicted_distribution
from workbench.training.events import Callback, Control, TrainState

if TYPE_CHECKING:
    from workbench.models import ModelBundle
    from workbench.training.run import Run

__all__ = ["ProbeRecorder"]


class ProbeRecorder(Callback):
    """Evaluates probe sentences at every evaluation of a run (and every ``every`` steps when given).

    Each probe is a text (with ``[MASK]`` for a masked LM; a prompt for a causal LM) or a pair
    (text, expected token). A record ``{"kind": "probe", "step", "probes": [...]}`` goes into the
    run's history, so it is saved with every checkpoint and comes back on resume; per probe it
    holds the top-k tokens and, where a token is expected, its rank (0 is top) and probability.
    ``listeners`` are called with each new record (the ``ProbeTimeline`` view is one).
    """

    # It reads the live model: a run of several processes runs it in its main process and sends its records here.
    runs_in_main_process = True

    def __init__(
        self,
        probes: Sequence[str | tuple[str, str | int | None]],
        *,
        top_k: int = 5,
        every: int | None = None,
        at_start: bool = False,
    ):
        if isinstance(probes, str) or not probes:
            raise ProbeError("ProbeRecorder takes a list of probe sentences (or (sentence, expected token) pairs).")
        self.probes: list[tuple[str, Any]] = []
        for p in probes:
            text, expected = (p, None) if isinstance(p, str) else tuple(p)
            if not isinstance(text, str) or not text.strip():
                raise ProbeError(f"Each probe is a non-empty sentence; got {text!r}.")
            self.probes.append((text, expected))
        if not isinstance(top_k, int) or top_k < 1:
            raise ProbeError(f"top_k must be a positive integer, got {top_k!r}.")
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ProbeError(f"every must be a positive number of steps or None, got {every!r}.")
        self.top_k, self.every, self.at_start = top_k, every, at_start
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.records: list[dict[str, Any]] = []
        self._expected_ids: list[int | None] = []
        self._lock = threading.Lock()

    @property
    def timeline(self) -> list[dict[str, Any]]:
        """The records so far, oldest first (a copy)."""
        with self._lock:
            return list(self.records)

    def series(self, text: str) -> dict[str, np.ndarray]:
        """For one probe: ``steps``, and the expected token's ``probability`` and ``rank`` at each record."""
        texts = [t for t, _ in self.probes]
        if text not in texts:
            raise ProbeError(f"{text!r} is not one of this recorder's probes.")
        index = texts.index(text)
        rows = [(r["step"], r["probes"][index]) for r in self.timeline]
        return {
            "steps": np.array([s for s, _ in rows]),
            "probability": np.array([np.nan if p["probability"] is None else p["probability"] for _, p in rows]),
            "rank": np.array([p["rank"] if p["rank"] is not None else -1 for _, p in rows]),
        }

    def check(self, bundle: ModelBundle) -> None:
        """Check every probe against the model (a mask where needed, expected tokens of one token)."""
        vocab = output_vocabulary(bundle.model)
        self._expected_ids = [
            None if expected is None else token_id(bundle.tokenizer, expected, vocab) for _, expected in self.probes
        ]
        for text, _ in self.probes:
            predicted_distribution(bundle, text)  # raises the probe's own sentence for a missing mask or a wrong model

    def record(self, bundle: ModelBundle, step: int) -> dict[str, Any]:
        """Evaluate every probe now and add a record for ``step``."""
        if len(self._expected_ids) != len(self.probes):
            self.check(bundle)
        out = []
        for (text, _), expected_id in zip(self.probes, self._expected_ids, strict=True):
            probs, _ = predicted_distribution(bundle, text)
            values, ids = probs.topk(min(self.top_k, probs.shape[-1]))
            entry: dict[str, Any] = {
                "text": text,
                "expected": None if expected_id is None else display_token(bundle.tokenizer, expected_id),
                "top": [
                    [display_token(bundle.tokenizer, int(i)), round(float(v), 6)]
                    for v, i in zip(values, ids, strict=True)
                ],
                "rank": None,
                "probability": None,
            }
            if expected_id is not None:
                p = probs[expected_id]
                entry["probability"] = round(float(p), 6)
                entry["rank"] = int((probs > p).sum())
            out.append(entry)
        return self.add(record={"kind": "probe", "step": int(step), "probes": out})

    def restore(self, records: Sequence[dict[str, Any]]) -> None:
        """Take back this recorder's records from a run's history (a resumed run brings them back)."""
        texts = [t for t, _ in self.probes]
        with self._lock:
            self.records = [
                r for r in records if r.get("kind") == "probe" and [p["text"] for p in r["probes"]] == texts
            ]

    def add(self, record: dict[str, Any]) -> dict[str, Any]:
        """Keep a record and tell the listeners (a run in several processes hands them over this way)."""
        with self._lock:
            self.records.append(record)
        for listener in list(self.listeners):
            listener(record)
        return record

    def _due(self, step: int) -> bool:
        return not self.records or self.records[-1]["step"] != step

    def _record_into(self, trainer: Run, state: TrainState) -> None:
        if self._due(state.step):
            trainer.history.records.append(self.record(trainer.bundle, state.step))

    # --- events ------------------------------------------------------------------------------

    def on_train_begin(self, trainer: Run, state: TrainState, control: Control) -> None:
        self.check(trainer.bundle)
        self.restore(trainer.history.records)
        if self.at_start and state.step == 0:
            self._record_into(trainer, state)

    def on_evaluate(self, trainer: Run, state: TrainState, control: Control, metrics: dict[str, Any]) -> None:
        self._record_into(trainer, state)

    def on_step_end(self, trainer: Run, state: TrainState, control: Control) -> None:
        if self.every and state.step % self.every == 0:
            self._record_into(trainer, state)
