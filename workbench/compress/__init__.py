"""Compression: int8 quantization, magnitude pruning and ONNX export — and what each changes inside.

Example::

    from workbench.compress import quantize, prune, export_onnx, compare_models
    int8 = quantize(bundle)                         # dynamic int8 on every Linear layer
    sparse = prune(bundle, 0.5)                     # half of each layer's weights, by magnitude
    onnx = export_onnx(bundle, "exports/clf")       # checked against PyTorch within 1e-4
    report = compare_models(bundle, int8, eval_data=val, texts=["A slow film, but worth it."])
    print(report)                                   # size, latency, accuracy; attention drift, attribution agreement

Distillation makes a smaller model rather than a smaller copy: ``every_other_layer(teacher)`` (as DistilBERT
starts) or ``preset_student(teacher)``, trained by the Trainer's ``"distill"`` task; ``compare_models(teacher,
student)`` compares the pair, the attention of each student layer against the teacher layer it came from.

Each call returns a new ``ModelBundle``; the original is never modified. A compressed bundle
saves (``bundle.save(dir)``) in a compact form and loads again with ``load_model(dir)``.
"""

from __future__ import annotations

from workbench.compress.distill import every_other_layer, keep_layers, preset_student
from workbench.compress.onnx_export import export_onnx
from workbench.compress.operations import prune, quantize
from workbench.compress.report import CompressionReport, compare_models

__all__ = [
    "CompressionReport",
    "compare_models",
    "every_other_layer",
    "export_onnx",
    "keep_layers",
    "preset_student",
    "prune",
    "quantize",
]
