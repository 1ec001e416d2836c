"""The tuned lens: the logit lens with one trained affine translator per layer (Belrose et al. 2023).

A lens is trained like any other job, by the Trainer's ``"tuned-lens"`` task (with the dashboard, Stop,
checkpoints and resume); the translators and their checkpoint format live with it in
``workbench.training.tuned_lens``. Here is what a reader of the lens needs: loading one, and reading a text
through it (``logit_lens(..., lens=)``) or held-out texts (``lens_quality``).

Example::

    trainer = Trainer(bundle, "tuned-lens", "shakespeare", config=TrainConfig(max_steps=300, output_dir="runs/lens"))
    dashboard.run(trainer)
    lens = load_tuned_lens("runs/lens", bundle)
    logit_lens(bundle, "To be, or not to be", lens=lens)
    lens_quality(bundle, held_out, lens).layers_better
"""

from workbench.explain.lens import logit_lens
from workbench.explain.lens_quality import LensQualityResult, lens_quality
from workbench.training.tuned_lens import LENS_FILE, TunedLens, load_tuned_lens

__all__ = ["LENS_FILE", "LensQualityResult", "TunedLens", "lens_quality", "load_tuned_lens", "logit_lens"]
