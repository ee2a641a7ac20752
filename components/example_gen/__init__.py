"""ExampleGen: CSV/Parquet -> split TFRecords of tf.Example (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.example_gen.component import example_gen

__all__ = ["example_gen"]
