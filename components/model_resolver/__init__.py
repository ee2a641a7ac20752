"""model_resolver."""
