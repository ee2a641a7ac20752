#!/usr/bin/env bash
# `make lint`'s type check: mypy on the kubetfx package, src/kubetfx and components/ (and the
# small pipelines/), configured in pyproject.toml.
#
#   scripts/typecheck.sh [mypy arguments]
#
# kubetfx.components lives in components/ (and kubetfx.pipelines in pipelines/), mapped into
# the package by setuptools' package-dir, which mypy cannot follow. So the package is laid
# out as installed, as a tree of links under build/typecheck/, and mypy checks that tree;
# its messages are turned back into the files' own paths.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
MYPY=${MYPY:-.venv/bin/mypy}
TREE=build/typecheck
rm -rf "$TREE"
mkdir -p "$TREE/kubetfx"
for entry in src/kubetfx/*; do
  case "$(basename "$entry")" in __pycache__) continue ;; esac
  ln -s "../../../$entry" "$TREE/kubetfx/"
done
for folder in components pipelines schemas; do
  ln -s "../../../$folder" "$TREE/kubetfx/$folder"
done
status=0
"$MYPY" --config-file pyproject.toml "$@" "$TREE/kubetfx" >"$TREE/report.txt" 2>&1 || status=$?
sed -e "s#^$TREE/kubetfx/components/#components/#" -e "s#^$TREE/kubetfx/pipelines/#pipelines/#" \
  -e "s#^$TREE/kubetfx/#src/kubetfx/#" "$TREE/report.txt"
exit "$status"
