#!/usr/bin/env bash
# The benchmark-only TFX 1.16 environment (issue 8: kubetfx against TFX's LocalDagRunner).
#
#   scripts/tfx-bench-env.sh            create or update it; prints its python on the last line
#   scripts/tfx-bench-env.sh --check    exit 0 when it is installed and up to date, else 1
#
# Where: $KUBETFX_TFX_ENV, default ${XDG_CACHE_HOME:-~/.cache}/kubetfx-bench/tfx-venv, outside
# the repository. What: our runtime lock (requirements/runtime.txt, hash-checked) so TFX runs
# on exactly the TensorFlow / TFDV / TFMA / Beam / ML Metadata versions kubetfx uses, then
# tfx and ml-pipelines-sdk 1.16.0 with --no-deps (they declare Requires-Python <3.11; the
# stack they need is the lock's), then what TFX imports that the lock lacks
# (tensorflow-transform 1.16.0, docker<8, keras-tuner, portpicker, tensorflow-hub<0.16;
# google-apitools is in the lock), resolved
# against the lock as a constraint so none of the lock's versions move, and pip (TFX
# installs a Trainer's module file as an ephemeral wheel with pip). Idempotent: a stamp
# holds the hash of the lock and of this script; with an unchanged stamp it does nothing.
#
# Never touches .venv or the project's dependencies: TFX is a benchmark baseline only.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCK="$REPO/requirements/runtime.txt"
ENV_DIR=${KUBETFX_TFX_ENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kubetfx-bench/tfx-venv}
PYTHON=${PYTHON:-python3}
STAMP="$ENV_DIR/.kubetfx-bench-stamp"
TFX_VERSION=1.16.0

want=$(cat "$LOCK" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)
have=$(cat "$STAMP" 2>/dev/null || true)
if [ "${1:-}" = "--check" ]; then
  [ "$want" = "$have" ] && [ -x "$ENV_DIR/bin/python" ]
  exit
fi
case "$(cd "$(dirname "$ENV_DIR")" 2>/dev/null && pwd)/" in
  "$REPO"/*) echo "refusing to build the TFX environment inside the repository: $ENV_DIR" >&2; exit 2 ;;
esac
if [ "$want" = "$have" ] && [ -x "$ENV_DIR/bin/python" ]; then
  echo "TFX $TFX_VERSION benchmark environment is up to date"
  echo "$ENV_DIR/bin/python"
  exit 0
fi

UV=$(command -v uv || true)
if [ -z "$UV" ]; then
  if [ -x "$REPO/.venv/bin/uv" ]; then UV="$REPO/.venv/bin/uv"; else
    echo "uv not found: run 'make venv' (it installs uv from requirements/bootstrap.txt) or put uv on PATH" >&2
    exit 2
  fi
fi

echo "building the TFX $TFX_VERSION benchmark environment in $ENV_DIR"
mkdir -p "$(dirname "$ENV_DIR")"
rm -f "$STAMP"
[ -x "$ENV_DIR/bin/python" ] || "$PYTHON" -m venv "$ENV_DIR"
PY="$ENV_DIR/bin/python"
# 1. the runtime lock, hash-checked (sync: the environment holds exactly the lock).
"$UV" pip sync --quiet --compile-bytecode -p "$PY" --require-hashes "$LOCK"
# 2. TFX itself, without its declared dependencies.
"$UV" pip install --quiet --compile-bytecode -p "$PY" --no-deps \
  "tfx==$TFX_VERSION" "ml-pipelines-sdk==$TFX_VERSION"
# 3. what TFX imports that the lock lacks; the lock pins everything it has.
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
grep -E '^[A-Za-z0-9_.-]+(\[[^]]*\])?==' "$LOCK" | sed -E 's/\[[^]]*\]//; s/ .*//' >"$constraints"
"$UV" pip install --quiet --compile-bytecode -p "$PY" -c "$constraints" \
  "tensorflow-transform==1.16.0" "docker<8" keras-tuner portpicker "tensorflow-hub<0.16" google-apitools pip
# 4. it imports, and the lock's versions held.
"$PY" - <<'EOF'
import importlib.metadata as md
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from tfx import v1  # noqa: F401

print("tfx", md.version("tfx"), "tensorflow", md.version("tensorflow"),
      "tfma", md.version("tensorflow-model-analysis"), "beam", md.version("apache-beam"))
EOF
"$UV" pip check -p "$PY" >/dev/null 2>&1 || true  # tfx's own ranges are ignored on purpose (--no-deps)
echo "$want" >"$STAMP"
echo "$PY"
