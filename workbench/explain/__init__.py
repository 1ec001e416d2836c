"""Explain: probes now; attention, attributions and faithfulness as they land."""

from workbench.explain.probe import FillMaskResult, ProbeError, TokenPrediction, fill_mask, next_token

__all__ = ["FillMaskResult", "ProbeError", "TokenPrediction", "fill_mask", "next_token"]
