"""Serving: model servers, load checks, KServe manifests and stepped canary rollouts."""
