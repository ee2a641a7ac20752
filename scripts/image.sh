#!/usr/bin/env bash
# Build the kubetfx component image from ./Containerfile and run it the way the KFP launcher
# does (tests/image). Every step is timed. docs/image.md has the measurements and the why.
#
#   scripts/image.sh              build the CPU image (kubetfx.images.RUNTIME_IMAGE), smoke-test it
#   scripts/image.sh --gpu        build the GPU variant (GPU_IMAGE) from requirements/runtime-gpu.txt
#   scripts/image.sh --no-test    build only
#   scripts/image.sh --test-only  smoke-test the image already built
#   scripts/image.sh --clean      delete the cache: images, wheelhouse, base stand-ins
#
# Environment:
#   KUBETFX_IMAGE_CACHE    cache folder (default ~/.cache/kubetfx/image): the wheelhouse, the
#                          debootstrap package cache and podman's own image store, kept apart
#                          from any other podman user on the machine.
#   KUBETFX_IMAGE_BASE     standin (default): build the base images locally with debootstrap and
#                          tag them with the real names from the Containerfile (no registry
#                          here); pull: pull the real python:* images (CI with registry access).
#   KUBETFX_IMAGE_STORAGE  overlay or vfs; default: overlay where the kernel mounts it on the
#                          cache's file system, else vfs (every layer and every container a full
#                          copy: slower, bigger). Fixed when the store is created.
#
# Podman runs daemonless and rootful, with cgroupfs and runc (crun fails on the project's
# machines: ENVIRONMENT.md). Needs root (or sudo) for apt-get, debootstrap and podman, and the
# project's virtual environment (make venv).
set -euo pipefail
cd "$(dirname "$0")/.."

VARIANT=cpu
BUILD=1
TEST=1
for arg in "$@"; do
  case "$arg" in
    --gpu) VARIANT=gpu ;;
    --no-test) TEST=0 ;;
    --test-only) BUILD=0 ;;
    --clean) CLEAN=1 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "scripts/image.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  exec sudo --preserve-env=KUBETFX_IMAGE_CACHE,KUBETFX_IMAGE_BASE,HOME "$0" "$@"
fi

CACHE=${KUBETFX_IMAGE_CACHE:-$HOME/.cache/kubetfx/image}
BASE_MODE=${KUBETFX_IMAGE_BASE:-standin}
PYTHON=.venv/bin/python
RUNC=/usr/sbin/runc
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

if [ "${CLEAN:-0}" = 1 ]; then
  echo "removing $CACHE"
  rm -rf "$CACHE"
  exit 0
fi

# overlay_works: can the kernel mount an overlay on the cache's file system (podman's own test)?
overlay_works() {
  local probe
  probe=$(mktemp -d "$CACHE/overlay-probe.XXXXXX")
  mkdir "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
  if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
    "$probe/merged" 2>/dev/null; then
    umount "$probe/merged"
    rm -rf "$probe"
    return 0
  fi
  rm -rf "$probe"
  return 1
}
mkdir -p "$CACHE"
if [ ! -f "$CACHE/storage-driver" ]; then
  driver=${KUBETFX_IMAGE_STORAGE:-}
  [ -n "$driver" ] || { overlay_works && driver=overlay || driver=vfs; }
  echo "$driver" >"$CACHE/storage-driver"
fi
DRIVER=$(cat "$CACHE/storage-driver")
if [ -n "${KUBETFX_IMAGE_STORAGE:-}" ] && [ "$KUBETFX_IMAGE_STORAGE" != "$DRIVER" ]; then
  echo "the store in $CACHE uses $DRIVER; run scripts/image.sh --clean to change it" >&2
  exit 2
fi
PODMAN=(podman --root "$CACHE/storage" --runroot "$CACHE/run" --storage-driver "$DRIVER"
  --cgroup-manager cgroupfs --runtime "$RUNC")
# The test runs podman the same way.
printf -v KUBETFX_PODMAN '%q ' "${PODMAN[@]}"
export KUBETFX_PODMAN

[ -x "$PYTHON" ] || { echo "no $PYTHON: run make venv first" >&2; exit 2; }

fail() {
  tail -40 "$1" >&2
  echo "failed: $STEP (full log: $1)" >&2
  exit 1
}

TIMES=()
step_start() { STEP=$1; STEP_T0=$(date +%s.%N); echo "== $STEP"; }
step_end() {
  local seconds
  seconds=$(python3 -c "print(f'{$(date +%s.%N) - $STEP_T0:.1f}')")
  TIMES+=("$(printf '%-36s %7s s  %s' "$STEP" "$seconds" "${1:-}")")
  echo "   $STEP: ${seconds} s ${1:-}"
}
report() {
  echo
  echo "== timings ($VARIANT)"
  printf '   %s\n' "${TIMES[@]}"
}
trap report EXIT

# ---------------------------------------------------------------- system packages
step_start "system packages"
missing=()
command -v podman >/dev/null || missing+=(podman)
[ -x "$RUNC" ] || missing+=(runc)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "   installing ${missing[*]} from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
step_end "($(podman --version))"

IMAGE_CONST=RUNTIME_IMAGE
[ "$VARIANT" = gpu ] && IMAGE_CONST=GPU_IMAGE
IMAGE=$("$PYTHON" -c "from kubetfx.images import $IMAGE_CONST; print($IMAGE_CONST)")
VERSION=$("$PYTHON" -c "import kubetfx; print(kubetfx.__version__)")
export KUBETFX_IMAGE="$IMAGE"
echo "   image: $IMAGE"

if [ "$BUILD" = 1 ]; then
  LOCK=requirements/runtime.txt
  [ "$VARIANT" = gpu ] && LOCK=requirements/runtime-gpu.txt
  [ -f "$LOCK" ] || { echo "$LOCK is missing: make lock writes it (docs/image.md)" >&2; exit 2; }

  # -------------------------------------------------------------- wheelhouse
  # Every file of the lock, as published on PyPI, checked against the lock's hashes, plus the
  # hash-pinned setuptools/wheel that build the lock's few source distributions in the builder.
  # Reused while the locks are unchanged.
  step_start "wheelhouse"
  WHEELS=$CACHE/wheels
  stamp=$(cat "$LOCK" requirements/bootstrap.txt | sha256sum | cut -c1-64)
  if [ "$(cat "$WHEELS/.$VARIANT-lock" 2>/dev/null)" = "$stamp" ]; then
    note="(reused)"
  else
    mkdir -p "$WHEELS"
    for requirements in "$LOCK" requirements/bootstrap.txt; do
      "$PYTHON" -m pip download --disable-pip-version-check --no-deps --require-hashes \
        -r "$requirements" -d "$WHEELS" >"$CACHE/wheelhouse.log" 2>&1 || fail "$CACHE/wheelhouse.log"
    done
    echo "$stamp" >"$WHEELS/.$VARIANT-lock"
    note="(downloaded)"
  fi
  step_end "$note $(du -sh "$WHEELS" | cut -f1), $(find "$WHEELS" -maxdepth 1 -type f ! -name '.*' | wc -l) files"

  # -------------------------------------------------------------- kubetfx wheel
  # Built from a copy of the working tree (tracked and untracked, not ignored files), so the
  # build writes nothing into the checkout.
  step_start "kubetfx wheel"
  rm -rf "$CACHE/dist" "$CACHE/src"
  mkdir -p "$CACHE/dist" "$CACHE/src"
  git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
  done | tar --null -T - -cf - | tar -C "$CACHE/src" -xf -
  "$PYTHON" -m pip wheel --disable-pip-version-check --no-deps -w "$CACHE/dist" "$CACHE/src" \
    >"$CACHE/wheel.log" 2>&1 || fail "$CACHE/wheel.log"
  rm -rf "$CACHE/src"
  step_end "$(basename "$CACHE"/dist/kubetfx-*.whl)"

  # -------------------------------------------------------------- base images
  arg_default() { sed -n "s/^ARG $1=//p" Containerfile; }
  BUILDER_IMAGE=$(arg_default BUILDER_IMAGE)
  BASE_IMAGE=$(arg_default BASE_IMAGE)
  # standin NAME PACKAGES: a Debian bookworm root filesystem with Debian's Python, imported
  # under NAME. It plays the role of the real python:* image of that name, and says so in a label.
  standin() {
    local name=$1 packages=$2 rootfs
    rootfs="$CACHE/rootfs-$(echo "$name" | tr -c 'a-zA-Z0-9.\n' '_')"
    rm -rf "$rootfs"
    mkdir -p "$CACHE/debs"
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="$packages" bookworm "$rootfs" \
      >"$CACHE/debootstrap.log" 2>&1 || fail "$CACHE/debootstrap.log"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . |
      "${PODMAN[@]}" import --quiet \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["python3"]' \
        --change "LABEL io.kubetfx.standin=\"debootstrap bookworm: $packages\"" \
        - "$name" >/dev/null
    rm -rf "$rootfs"
  }
  for pair in "$BASE_IMAGE|python3,python3-venv" "$BUILDER_IMAGE|python3,python3-venv,python3-dev,g++,make"; do
    name=${pair%%|*}
    step_start "base ${name##*/}"
    if "${PODMAN[@]}" image exists "$name"; then
      note="(present)"
    elif [ "$BASE_MODE" = pull ]; then
      "${PODMAN[@]}" pull --quiet "$name" >/dev/null
      note="(pulled)"
    else
      standin "$name" "${pair#*|}"
      note="(debootstrap stand-in)"
    fi
    kind=$("${PODMAN[@]}" image inspect --format '{{index .Labels "io.kubetfx.standin"}}' "$name")
    step_end "$note${kind:+ stand-in: $kind}"
  done

  # -------------------------------------------------------------- image
  # --network none: everything comes from the wheelhouse; nothing may download.
  # With overlay, layers are cached: the builder stage is built and tagged first, so its layer
  # (the locked dependencies, the slow part) survives the prune below and is reused until the
  # lock changes; a new kubetfx wheel then rebuilds only its own small layer. With vfs every
  # layer is a full copy of the file system: one build, one commit per stage, nothing cached.
  wheel=$(echo "$CACHE"/dist/kubetfx-*.whl)
  build() {
    "${PODMAN[@]}" build --network none "${LIMITS[@]}" \
      --build-context wheels="$WHEELS" --build-context dist="$CACHE/dist" \
      --build-arg VARIANT="$VARIANT" --build-arg VERSION="$VERSION" \
      --build-arg KUBETFX_WHEEL_SHA256="$(sha256sum "$wheel" | cut -c1-64)" \
      -f Containerfile "$@" . >>"$log" 2>&1 || fail "$log"
  }
  step_start "image build"
  log="$CACHE/build-$VARIANT.log"
  : >"$log"
  if [ "$DRIVER" = overlay ]; then
    build --layers=true --target builder -t "localhost/kubetfx-builder:$VARIANT"
    build --layers=true -t "$IMAGE"
  else
    build --layers=false -t "$IMAGE"
  fi
  # What a rebuild left untagged (the previous image, a builder for an older lock): drop it.
  "${PODMAN[@]}" image prune --force >/dev/null
  size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
  step_end "$IMAGE, $((size / 1000000)) MB, $DRIVER storage"
  echo "   store: $(du -sh "$CACHE/storage" 2>/dev/null | cut -f1) in $CACHE/storage"
fi

# ------------------------------------------------------------------ smoke test
if [ "$TEST" = 1 ]; then
  step_start "smoke test (tests/image)"
  KUBETFX_IMAGE_TESTS=1 "$PYTHON" -m pytest tests/image -p no:cacheprovider -q -rA --durations=5
  step_end
fi
