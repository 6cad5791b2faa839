"""The built-in model steps: ``tune``, ``train``, ``evaluate`` and ``register``."""

from conveyor.train.steps._build import model_steps
from conveyor.train.steps._evaluate import evaluate_step
from conveyor.train.steps._register import register_step
from conveyor.train.steps._train import train_step
from conveyor.train.steps._tune import WORKERS_ENV, tune_step

__all__ = [
    "WORKERS_ENV",
    "evaluate_step",
    "model_steps",
    "register_step",
    "train_step",
    "tune_step",
]
