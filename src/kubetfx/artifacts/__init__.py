"""The on-disk artifact contract: what each artifact is and how its files are laid out,
and the one reader and writer of each.

* :mod:`~kubetfx.artifacts.kinds`: artifact kinds and the KFP types they travel under;
* :mod:`~kubetfx.artifacts.layout`: every file and folder name inside an artifact;
* :mod:`~kubetfx.artifacts.location`: opening an artifact wherever it lives (local path,
  launcher path, object store), on :mod:`kubetfx.storage`;
* :mod:`~kubetfx.artifacts.tabular`: CSV and Parquet into Arrow, and Arrow into TFX's form;
* one module per artifact: :mod:`~kubetfx.artifacts.examples`,
  :mod:`~kubetfx.artifacts.statistics`, :mod:`~kubetfx.artifacts.schema`,
  :mod:`~kubetfx.artifacts.model`, :mod:`~kubetfx.artifacts.evaluation` and
  :mod:`~kubetfx.artifacts.blessing`.

Executors read and write artifacts through these modules and never through another
component's executor. Importing this package imports no TensorFlow, TFX library or Arrow;
the modules import them where they read or write.
"""
