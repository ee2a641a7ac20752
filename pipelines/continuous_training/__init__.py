"""The continuous-training pipeline for scheduled runs (see README.md)."""

from kubetfx.pipelines.continuous_training.pipeline import continuous_training

__all__ = ["continuous_training"]
