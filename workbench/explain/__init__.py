"""Explain: attention, token attributions with their faithfulness, probes, and interventions.

Interventions run on the real model through hooks on named sites (``sites``, ``record``):
activation patching and causal tracing (``patch``), its first-order approximation
(``attribution_patching``), head ablation (``ablate``, ``ablate_each_head``) and steering
(``steering_vector``, then ``generate(..., steer=(vector, coefficient))``).

Readouts are trained: a tuned lens (``TunedLens``, trained by the Trainer's ``"tuned-lens"`` task, read with
``logit_lens(..., lens=)`` and ``lens_quality``) and linear probes on every layer (``probe_layers``, with a
control task).

The pretraining objectives' heads have their probes: P(is next) or P(in order) for a pair of texts
(``sentence_pair``, a next-sentence or sentence-order head) and each token's probability of having been replaced
(``replaced_tokens``, an ELECTRA discriminator's head).

Evaluations feed the figures: a classifier's confusion matrix, per-class scores and precision-recall curves
(``evaluate_classifier``), texts' representations projected per layer (``project_layers``), and the deletion
curve of random rankings that attributions should beat (``random_ranking_floor``).

The explain errors live in ``workbench.errors``; ``ProbeError``, ``AttributionError`` and
``MemoryBudgetError`` are also here. Every call works within a memory budget (``memory_mb``, by
default the kernel's: ``set_memory_budget``) and says so, before allocating, when it cannot.
Views of these results (``AttentionView``, ``to_bertviz``, ...) are in ``workbench.ui``: nothing here imports it.
"""

from workbench.errors import AttributionError, MemoryBudgetError, ProbeError
from workbench.explain.ablation import AblationResult, ablate, ablate_each_head
from workbench.explain.activations import Activations, record
from workbench.explain.attention import (
    STATISTICS,
    AttentionResult,
    attention,
    attention_flow,
    attention_rollout,
    head_statistics,
)
from workbench.explain.attribution import METHODS, AttributionResult, attribute, attribute_many
from workbench.explain.attribution_patching import attribution_patching
from workbench.explain.budget import DEFAULT_MEMORY_MB, memory_budget, set_memory_budget
from workbench.explain.classifier_eval import ClassifierEvaluation, PrecisionRecallCurve, evaluate_classifier
from workbench.explain.compare import Comparison, compare
from workbench.explain.faithfulness import (
    Agreement,
    FaithfulnessScores,
    agreement,
    faithfulness,
    random_ranking_floor,
)
from workbench.explain.generate import GeneratedToken, GenerationResult, generate
from workbench.explain.lens import LogitLensResult, logit_lens
from workbench.explain.lens_quality import LensQualityResult, lens_quality
from workbench.explain.metrics import Metric, logit_diff, probability
from workbench.explain.patching import patch
from workbench.explain.patching_result import PatchingResult
from workbench.explain.probe import FillMaskResult, TokenPrediction, fill_mask, next_token
from workbench.explain.probing import ProbeLayersResult, probe_layers
from workbench.explain.projection import ProjectionResult, project_layers
from workbench.explain.recorder import ProbeRecorder
from workbench.explain.replaced_tokens import ReplacedTokenResult, replaced_tokens
from workbench.explain.sentence_pair import SentencePairResult, sentence_pair
from workbench.explain.sites import SITE_KINDS, Site, SiteInfo, hooked, list_sites
from workbench.explain.steering import SteeringVector, load_steering_vector, steering_vector
from workbench.explain.survey import SURVEY_MEASURES, AttentionSurvey, attention_survey
from workbench.explain.tokens import TokenInfo, token_info
from workbench.explain.tuned_lens import TunedLens, load_tuned_lens

__all__ = [
    "DEFAULT_MEMORY_MB",
    "METHODS",
    "SITE_KINDS",
    "STATISTICS",
    "SURVEY_MEASURES",
    "AblationResult",
    "Activations",
    "Agreement",
    "AttentionResult",
    "AttentionSurvey",
    "AttributionError",
    "AttributionResult",
    "ClassifierEvaluation",
    "Comparison",
    "FaithfulnessScores",
    "FillMaskResult",
    "GeneratedToken",
    "GenerationResult",
    "LensQualityResult",
    "LogitLensResult",
    "MemoryBudgetError",
    "Metric",
    "PatchingResult",
    "PrecisionRecallCurve",
    "ProbeError",
    "ProbeLayersResult",
    "ProbeRecorder",
    "ProjectionResult",
    "ReplacedTokenResult",
    "SentencePairResult",
    "Site",
    "SiteInfo",
    "SteeringVector",
    "TokenInfo",
    "TokenPrediction",
    "TunedLens",
    "ablate",
    "ablate_each_head",
    "agreement",
    "attention",
    "attention_flow",
    "attention_rollout",
    "attention_survey",
    "attribute",
    "attribute_many",
    "attribution_patching",
    "compare",
    "evaluate_classifier",
    "faithfulness",
    "fill_mask",
    "generate",
    "head_statistics",
    "hooked",
    "lens_quality",
    "list_sites",
    "load_steering_vector",
    "load_tuned_lens",
    "logit_diff",
    "logit_lens",
    "memory_budget",
    "next_token",
    "patch",
    "probability",
    "probe_layers",
    "project_layers",
    "random_ranking_floor",
    "record",
    "replaced_tokens",
    "sentence_pair",
    "set_memory_budget",
    "steering_vector",
    "token_info",
]
