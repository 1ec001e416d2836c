"""Training: one loop for masked-LM and causal-LM pretraining and for fine-tuning."""

from workbench.training.callbacks import Checkpointer, ConsolePrinter, EarlyStopping, MetricsWriter
from workbench.training.config import TASKS, TrainConfig
from workbench.training.events import Callback, Control, TrainState
from workbench.training.job import TrainingJob
from workbench.training.loop import Trainer, TrainingHistory

__all__ = [
    "TASKS", "Callback", "Checkpointer", "ConsolePrinter", "Control", "EarlyStopping", "MetricsWriter",
    "TrainConfig", "TrainState", "Trainer", "TrainingHistory", "TrainingJob",
]
