# shellcheck shell=bash
# Shared by scripts/onyx_contract and scripts/onyx_e2e (source it; bash, set -euo pipefail):
# a copy of an Onyx checkout with onyx-r2r installed, Onyx's own Python, and a virtualenv
# whose versions all come from the checkout's backend/requirements/default.txt.
#
#   onyx_copy_checkout SOURCE DEST      DEST/onyx (patched by patches/apply) and DEST/pristine;
#                                       sets ONYX_COMMIT, ONYX_SRC, ONYX_REQUIREMENTS
#   onyx_python                         sets ONYX_PYTHON, ONYX_PY_VERSION, ONYX_WANT_PYTHON
#   onyx_venv subset|full               sets ONYX_VENV ($STACK_DIR/onyx-contract-venv-…),
#                                       built once (under a lock) and reused
#   onyx_ee_extras                      sets ONYX_EE_EXTRAS: a directory (for PYTHONPATH)
#                                       with the packages only ee.txt pins (Onyx's image
#                                       installs default.txt and ee.txt), hashes checked
#   onyx_tiktoken_cache                 sets ONYX_TIKTOKEN_CACHE: an offline tiktoken cache
#                                       (cl100k_base, …) copied from the venv's litellm
# Callers define say() and loud(); REPO and STACK_DIR must be set. Nothing is written into
# SOURCE.

# Distribution names (no versions: those come from Onyx's default.txt) that the overlay and
# the Onyx modules the contract tests import (models, interfaces, factory, docfetching, the
# auth dependency of the admin router) need.
ONYX_SUBSET_PACKAGES=(
  pydantic sqlalchemy fastapi fastapi-users fastapi-users-db-sqlalchemy requests redis httpx
  celery psycopg2-binary alembic backoff cryptography opensearch-py httpx-oauth boto3
  sentry-sdk prometheus-client puremagic jinja2 sendgrid tenacity pillow cachetools libpass
)

# ------------------------------------------------------- 1. Onyx copy + install
onyx_copy_checkout() {
  local source=$1 dest=$2
  ONYX_SRC=$dest/onyx
  mkdir -p "$ONYX_SRC"
  local parts=(backend web/src/lib/admin-routes.ts pyproject.toml)
  _onyx_copy_from_disk() {
    cp -r "$source/backend" "$ONYX_SRC/backend"
    mkdir -p "$ONYX_SRC/web/src/lib" && cp "$source/web/src/lib/admin-routes.ts" "$ONYX_SRC/web/src/lib/"
    if [[ -f $source/pyproject.toml ]]; then cp "$source/pyproject.toml" "$ONYX_SRC/"; fi
  }
  _onyx_is_git_source() {  # a git directory, or the top of a work tree (not a folder inside another repo)
    git -C "$1" rev-parse --verify -q HEAD >/dev/null 2>&1 || return 1
    [[ $(git -C "$1" rev-parse --is-bare-repository) == true ]] && return 0
    [[ $(git -C "$1" rev-parse --show-toplevel 2>/dev/null) -ef $1 ]]
  }
  if _onyx_is_git_source "$source"; then
    ONYX_COMMIT=$(git -C "$source" rev-parse HEAD)
    git -C "$source" archive HEAD "${parts[@]}" | tar -x -C "$ONYX_SRC"
    # a git work tree with local changes: take the files as they are on disk instead
    if git -C "$source" rev-parse --is-inside-work-tree >/dev/null 2>&1 \
      && [[ -n $(git -C "$source" status --porcelain -- "${parts[@]}") ]]; then
      ONYX_COMMIT="$ONYX_COMMIT (+ local changes)"
      rm -rf "${ONYX_SRC:?}/"*
      _onyx_copy_from_disk
    fi
  else
    ONYX_COMMIT="(not a git checkout: $source)"
    _onyx_copy_from_disk
  fi
  ONYX_REQUIREMENTS=$ONYX_SRC/backend/requirements/default.txt
  [[ -f $ONYX_REQUIREMENTS ]] || { echo "$source has no backend/requirements/default.txt" >&2; exit 1; }
  # a pristine copy for the patch tests (apply twice, drift) and the import comparisons
  cp -r "$ONYX_SRC" "$dest/pristine"
  say "Onyx $ONYX_COMMIT → $ONYX_SRC"
  "$REPO/patches/apply" "$ONYX_SRC"
}

# ------------------------------------------------------------ 2. Onyx's Python
_onyx_runs() { [[ -n $1 && -x $1 ]] && "$1" -c 'import sys, venv, ssl' >/dev/null 2>&1; }
_onyx_find_python() {  # $1 = "3.13": the first interpreter of that version that really runs
  local candidate
  for candidate in "$(command -v "python$1" || true)" \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$1"*/bin/"python$1" \
    /usr/local/bin/"python$1" /usr/bin/"python$1"; do
    if _onyx_runs "$candidate"; then echo "$candidate"; return 0; fi
  done
  return 1
}
onyx_python() {
  ONYX_WANT_PYTHON=${ONYX_CONTRACT_PYTHON:-}
  if [[ -z $ONYX_WANT_PYTHON ]]; then
    ONYX_WANT_PYTHON=$(sed -n 's/^requires-python *= *"[>=~]*\([0-9]*\.[0-9]*\).*/\1/p' \
      "$ONYX_SRC/pyproject.toml" 2>/dev/null | head -1)
  fi
  ONYX_WANT_PYTHON=${ONYX_WANT_PYTHON:-3.13}
  if ONYX_PYTHON=$(_onyx_find_python "$ONYX_WANT_PYTHON"); then
    say "Python $ONYX_WANT_PYTHON (what Onyx requires): $ONYX_PYTHON"
  else
    ONYX_PYTHON=""
    local fallback
    for fallback in 3.13 3.12 3.11; do
      if ONYX_PYTHON=$(_onyx_find_python "$fallback"); then break; fi
    done
    [[ -n $ONYX_PYTHON ]] || { echo "no Python >= 3.11 found" >&2; exit 1; }
    loud "Onyx requires Python $ONYX_WANT_PYTHON, which is not installed here: running on $ONYX_PYTHON." \
      "Tests that need Onyx's Python (importing onyx.main) will be SKIPPED."
  fi
  ONYX_PY_VERSION=$("$ONYX_PYTHON" -c 'import platform; print(platform.python_version())')
}

# -------------------------------------------------------------- 3. virtualenv
onyx_venv() {
  local kind=$1 constraints name missing=() pytest_pin tools hash
  constraints=$(dirname "$ONYX_SRC")/onyx-constraints.txt
  # name==version lines of default.txt (extras dropped: constraints take none), with markers
  sed -n 's/^\([A-Za-z0-9_.-]*\)\(\[[^]]*\]\)\{0,1\}==\([^ ;\\]*\)\( *;[^\\]*\)\{0,1\}.*/\1==\3\4/p' \
    "$ONYX_REQUIREMENTS" > "$constraints"
  for name in "${ONYX_SUBSET_PACKAGES[@]}"; do
    grep -qi "^$name==" "$constraints" || missing+=("$name")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    loud "Onyx's default.txt pins none of: ${missing[*]} - installed at the newest version" \
      "that fits the other pins (the overlay needs them)."
  fi
  # pytest is a dev dependency of Onyx: its dev.txt pin when there is one
  pytest_pin=$(sed -n 's/^\(pytest==[^ ;\\]*\).*/\1/p' "$ONYX_SRC/backend/requirements/dev.txt" 2>/dev/null | head -1)
  tools=("${pytest_pin:-pytest}" pytest-timeout)
  hash=$({ echo "$ONYX_PYTHON $ONYX_PY_VERSION $kind"; printf '%s\n' "${ONYX_SUBSET_PACKAGES[@]}" "${tools[@]}"; cat "$ONYX_REQUIREMENTS"; } \
    | sha256sum | cut -c1-12)
  ONYX_VENV=$STACK_DIR/onyx-contract-venv-$ONYX_PY_VERSION-$kind-$hash
  mkdir -p "$STACK_DIR"
  # one builder at a time: scripts/onyx_contract and scripts/onyx_e2e may run side by side
  exec {lock_fd}>"$ONYX_VENV.lock"
  flock "$lock_fd"
  if [[ ! -f $ONYX_VENV/.complete ]]; then
    say "preparing $ONYX_VENV ($kind: versions from Onyx's default.txt)"
    rm -rf "$ONYX_VENV"
    "$ONYX_PYTHON" -m venv "$ONYX_VENV"
    _onyx_pip() { "$ONYX_VENV/bin/pip" install -q --disable-pip-version-check "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
    if [[ $kind == full ]]; then
      # exactly Onyx's environment: every pinned package, hashes checked, nothing resolved
      _onyx_pip --no-deps -r "$ONYX_REQUIREMENTS"
    else
      _onyx_pip -c "$constraints" "${ONYX_SUBSET_PACKAGES[@]}"
    fi
    _onyx_pip -c "$constraints" "${tools[@]}"
    "$ONYX_VENV/bin/python" -c "import pydantic, sqlalchemy, fastapi, opensearchpy, pytest" \
      || { echo "the virtualenv $ONYX_VENV is incomplete" >&2; exit 1; }
    touch "$ONYX_VENV/.complete"
  fi
  flock -u "$lock_fd"
  exec {lock_fd}>&-
  # the versions that matter, as installed (so a report can name them)
  say "venv $ONYX_VENV: $("$ONYX_VENV/bin/python" - <<'PY'
from importlib.metadata import version
print(", ".join(f"{n} {version(n)}" for n in ("pydantic", "sqlalchemy", "fastapi", "celery", "redis", "httpx", "backoff")))
PY
)"
}

# ------------------------------------------------- 4. ee.txt's extra packages
onyx_ee_extras() {
  local ee=$ONYX_SRC/backend/requirements/ee.txt extra_req hash names
  ONYX_EE_EXTRAS=""
  [[ -f $ee ]] || return 0
  names=$(comm -23 \
    <(sed -n 's/^\([A-Za-z0-9_.-]*\)\(\[[^]]*\]\)\{0,1\}==.*/\1/p' "$ee" | tr 'A-Z_' 'a-z-' | sort -u) \
    <(sed -n 's/^\([A-Za-z0-9_.-]*\)\(\[[^]]*\]\)\{0,1\}==.*/\1/p' "$ONYX_REQUIREMENTS" | tr 'A-Z_' 'a-z-' | sort -u) \
    | tr '\n' ' ')
  [[ -n ${names// /} ]] || return 0
  extra_req=$(dirname "$ONYX_SRC")/onyx-ee-extra.txt
  # the requirement blocks (name==version \ --hash=… lines) of those packages, comments dropped
  awk -v names="$names" '
    BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) want[a[i]] = 1 }
    /^[A-Za-z0-9_.-]+.*==/ { name = tolower($0); sub(/[=\[].*/, "", name); gsub(/_/, "-", name); keep = (name in want) }
    /^ *#/ { next }
    keep { print }' "$ee" >"$extra_req"
  hash=$({ echo "$ONYX_PY_VERSION"; cat "$extra_req"; } | sha256sum | cut -c1-12)
  ONYX_EE_EXTRAS=$STACK_DIR/onyx-ee-extras-$ONYX_PY_VERSION-$hash
  exec {ee_lock_fd}>"$ONYX_EE_EXTRAS.lock"
  flock "$ee_lock_fd"
  if [[ ! -f $ONYX_EE_EXTRAS/.complete ]]; then
    say "installing ee.txt's extra packages ($names) into $ONYX_EE_EXTRAS"
    rm -rf "$ONYX_EE_EXTRAS"
    "$ONYX_VENV/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes \
      --target "$ONYX_EE_EXTRAS" -r "$extra_req" 2>&1 | grep -v "^WARNING: Location" || true
    [[ -n $(ls -A "$ONYX_EE_EXTRAS" 2>/dev/null) ]] || { echo "installing $names failed" >&2; exit 1; }
    touch "$ONYX_EE_EXTRAS/.complete"
  fi
  flock -u "$ee_lock_fd"
  exec {ee_lock_fd}>&-
}

# ------------------------------------------------- 5. offline tiktoken cache
onyx_tiktoken_cache() {
  local tokdir
  ONYX_TIKTOKEN_CACHE=$ONYX_VENV/tiktoken-cache
  # cl100k_base: tiktoken's cache key is the sha1 of the encoding's download URL
  if [[ ! -f $ONYX_TIKTOKEN_CACHE/9b5ad71b2ce5302211f9c61530b329a4922fc6a4 ]]; then
    tokdir=$(find "$ONYX_VENV"/lib/python3*/site-packages/litellm/litellm_core_utils/tokenizers \
      -maxdepth 0 -type d 2>/dev/null | head -n 1)
    [[ -n $tokdir ]] || { echo "litellm's tokenizers directory is missing in $ONYX_VENV" >&2; exit 1; }
    mkdir -p "$ONYX_TIKTOKEN_CACHE"
    find "$tokdir" -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9a-f]{40}' \
      -exec cp -u {} "$ONYX_TIKTOKEN_CACHE/" \;
  fi
  [[ -f $ONYX_TIKTOKEN_CACHE/9b5ad71b2ce5302211f9c61530b329a4922fc6a4 ]] \
    || { echo "no cl100k_base tiktoken file in $ONYX_TIKTOKEN_CACHE" >&2; exit 1; }
}
