"""The continuous-training pipeline for scheduled runs (see README.md)."""
