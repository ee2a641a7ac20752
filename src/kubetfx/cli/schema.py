"""``kubetfx schema diff``: what a schema would need to change to accept new data.

The one command that loads TensorFlow (through TFDV); it holds back what those libraries
print while they load and run, so the user sees kubetfx's progress and result.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click

from kubetfx.errors import KubetfxError


@click.group()
def schema() -> None:
    """Look at and evolve schemas."""


@schema.command("diff")
@click.argument("schema_file")
@click.option(
    "--data", "data_uri", required=True, help="CSV/Parquet file, folder or {SPAN} pattern to compare with."
)
@click.option("--write", "out", type=click.Path(dir_okay=False), help="Write the proposed schema here.")
def schema_diff(schema_file: str, data_uri: str, out: str | None) -> None:
    """Show what SCHEMA_FILE would need to change to accept DATA (TFDV's update_schema)."""
    import time

    began = time.monotonic()

    def progress(message: str) -> None:
        click.echo(f"[{time.monotonic() - began:5.1f}s] {message}", err=True)

    progress("loading TensorFlow Data Validation")
    with _quiet_libraries():
        import tensorflow_data_validation  # noqa: F401 - loaded here, quietly, with its progress line

        from kubetfx.schema_tools import propose
    progress(f"reading {data_uri}, computing its statistics and comparing them with {schema_file}")
    with _quiet_libraries():
        diff, proposed = propose(schema_file, data_uri)
    progress("done")
    if not diff:
        click.echo(f"{schema_file} already accepts {data_uri}: no change proposed")
    else:
        click.echo(diff)
    if out:
        with open(out, "w") as f:
            f.write(proposed)
        click.echo(f"wrote the proposed schema to {out}; review it, then copy the changes you accept")


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Hold back what TensorFlow, TFDV and Beam print while they load and run (C++ log
    lines, deprecation warnings): the user sees kubetfx's progress and result. What was
    held back is shown if the step fails with anything but a kubetfx error (which says
    itself what is wrong)."""
    import logging
    import os
    import tempfile
    import warnings

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        root.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        except KubetfxError:
            raise
        except BaseException:
            sys.stderr.flush()
            held.seek(0)
            os.write(saved, held.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            root.setLevel(level)
