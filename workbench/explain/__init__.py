"""Explain: attention, token attributions with their faithfulness, and probes.

The explain errors live in ``workbench.errors``; ``ProbeError``, ``AttributionError`` and
``MemoryBudgetError`` are also here. Every call works within a memory budget (``memory_mb``, by
default the kernel's: ``set_memory_budget``) and says so, before allocating, when it cannot.
Views of these results (``AttentionView``, ``to_bertviz``, ...) are in ``workbench.ui``: nothing here imports it.
"""

from workbench.errors import AttributionError, MemoryBudgetError, ProbeError
from workbench.explain.attention import (
    STATISTICS,
    AttentionResult,
    attention,
    attention_flow,
    attention_rollout,
    head_statistics,
)
from workbench.explain.attribution import METHODS, AttributionResult, attribute, attribute_many
from workbench.explain.budget import DEFAULT_MEMORY_MB, memory_budget, set_memory_budget
from workbench.explain.compare import Comparison, compare
from workbench.explain.faithfulness import Agreement, FaithfulnessScores, agreement, faithfulness
from workbench.explain.generate import GeneratedToken, GenerationResult, generate
from workbench.explain.lens import LogitLensResult, logit_lens
from workbench.explain.probe import FillMaskResult, TokenPrediction, fill_mask, next_token
from workbench.explain.recorder import ProbeRecorder
from workbench.explain.survey import SURVEY_MEASURES, AttentionSurvey, attention_survey
from workbench.explain.tokens import TokenInfo, token_info

__all__ = [
    "DEFAULT_MEMORY_MB",
    "METHODS",
    "STATISTICS",
    "SURVEY_MEASURES",
    "Agreement",
    "AttentionResult",
    "AttentionSurvey",
    "AttributionError",
    "AttributionResult",
    "Comparison",
    "FaithfulnessScores",
    "FillMaskResult",
    "GeneratedToken",
    "GenerationResult",
    "LogitLensResult",
    "MemoryBudgetError",
    "ProbeError",
    "ProbeRecorder",
    "TokenInfo",
    "TokenPrediction",
    "agreement",
    "attention",
    "attention_flow",
    "attention_rollout",
    "attention_survey",
    "attribute",
    "attribute_many",
    "compare",
    "faithfulness",
    "fill_mask",
    "generate",
    "head_statistics",
    "logit_lens",
    "memory_budget",
    "next_token",
    "set_memory_budget",
    "token_info",
]
