"""Reference pipelines built from kubetfx components."""
