"""Views: the only part of the workbench that imports ipywidgets, anywidget, plotly or IPython."""

from workbench.ui._colab import enable_colab_widgets
from workbench.ui.attention_view import AttentionView
from workbench.ui.attribution_view import AttributionView
from workbench.ui.bertviz_bridge import to_bertviz
from workbench.ui.compression_view import CompressionView
from workbench.ui.dashboard import TrainingDashboard
from workbench.ui.layer_curves import LayerCurves
from workbench.ui.patching_view import PatchingView
from workbench.ui.probe_views import MaskProbe, ProbeTimeline
from workbench.ui.replaced_token_view import ReplacedTokenView

__all__ = [
    "AttentionView",
    "AttributionView",
    "CompressionView",
    "LayerCurves",
    "MaskProbe",
    "PatchingView",
    "ProbeTimeline",
    "ReplacedTokenView",
    "TrainingDashboard",
    "enable_colab_widgets",
    "to_bertviz",
]

enable_colab_widgets()
