"""SchemaGen: infer or import a schema, with environments (see README.md)."""

import os

if os.environ.get("_KFP_RUNTIME") != "true":  # see kubetfx.components
    from kubetfx.components.schema_gen.component import schema_gen

__all__ = ["schema_gen"]
