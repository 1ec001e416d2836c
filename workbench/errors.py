"""The workbench's own errors: each carries one sentence a newcomer can act on."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose."""


class AssetError(WorkbenchError):
    """An asset could not be named, fetched, verified or unpacked."""


class ModelLoadError(WorkbenchError):
    """A model could not be found or loaded."""


class DataError(WorkbenchError, ValueError):
    """A corpus, data set or tokenizer input is unusable."""


class ConfigError(WorkbenchError, ValueError):
    """A configuration value is out of range or unknown."""


class TrainingError(WorkbenchError):
    """A training run could not start or had to stop."""


class CheckpointError(WorkbenchError):
    """A checkpoint is missing, incomplete or belongs to another model."""


class CompressionError(WorkbenchError, ValueError):
    """A model could not be quantized, pruned, exported or compared."""


class ProbeError(WorkbenchError, ValueError):
    """An explain call (a probe, the logit lens, attention, generation, a comparison) got a text, a target,
    an option or a model that does not fit it."""


class ModelListError(ProbeError, TypeError):
    """The models given to compare or a probe view are not bundles, checkpoint folders, names or a mapping of them.

    Both a ``ProbeError`` (the explain family) and a ``TypeError`` (what a view says when handed the wrong thing).
    """


class AttributionError(WorkbenchError, ValueError):
    """An attribution's text, target, method or model does not fit."""


class MemoryBudgetError(WorkbenchError, ValueError):
    """An explain call would need more memory than its budget (``memory_mb``); raised before it allocates.

    The sentence says what the call needs and what to do: a shorter text, a lower resolution, or a larger budget.
    """
