"""Explain: attention, probes (attributions and faithfulness as they land)."""

from workbench.explain.attention import (
    STATISTICS,
    AttentionResult,
    attention,
    attention_flow,
    attention_rollout,
    head_statistics,
)
from workbench.explain.survey import SURVEY_MEASURES, AttentionSurvey, attention_survey
from workbench.explain.probe import FillMaskResult, ProbeError, TokenPrediction, fill_mask, next_token
from workbench.explain.tokens import TokenInfo, token_info

__all__ = [
    "STATISTICS", "SURVEY_MEASURES", "AttentionResult", "AttentionSurvey", "attention_survey", "FillMaskResult", "ProbeError", "TokenInfo", "TokenPrediction", "attention",
    "attention_flow", "attention_rollout", "fill_mask", "head_statistics", "next_token", "token_info",
]
