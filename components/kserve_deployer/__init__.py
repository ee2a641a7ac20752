"""kserve_deployer: serve a pushed version on KServe through a stepped canary rollout."""
