"""The reference training pipeline (see README.md)."""

from kubetfx.pipelines.training.pipeline import training

__all__ = ["training"]
