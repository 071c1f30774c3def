#!/usr/bin/env bash
# Run the official Open Responses compliance suite (bin/compliance-test.ts of
# github.com/openresponses/openresponses) against `responsa serve` with the
# deterministic test model.
#
# Usage:  scripts/compliance.sh SUITE
#
#   SUITE   a checkout of the openresponses repo (a directory holding
#           bin/compliance-test.ts), or a git dir of it (bare or not; its
#           $OR_REF, default HEAD, is extracted into a temp dir).
#           This script fetches nothing: get the suite yourself, e.g.
#           `git clone https://github.com/openresponses/openresponses`.
#
# Environment:
#   OR_REF      ref to extract when SUITE is a git dir (default HEAD)
#   FILTER      comma-separated test ids to run (default: all)
#   OUT         JSON result file (default: $TMPDIR/responsa-compliance.json)
#   BUN         bun binary to run the suite with (default: `bun` on PATH, else
#               bun + zod are installed once from the npm registry into
#               OR_CACHE_DIR, default ~/.cache/responsa-compliance)
#   PYTHON      interpreter with responsa installed (default: python3)
#   KEEP_LOG=1  keep the server log (path is printed)
#
# Exit status: 0 every test passed, 1 some failed, 2 usage or setup error.
set -euo pipefail

BUN_VERSION="${BUN_VERSION:-1.4.5}"
ZOD_VERSION="${ZOD_VERSION:-3.25.76}"
PYTHON="${PYTHON:-python3}"
die() { echo "compliance: $*" >&2; exit 2; }

SUITE="${1:-}"
[[ -n "$SUITE" && -e "$SUITE" ]] || die "usage: $0 SUITE   (a checkout or git dir of openresponses/openresponses)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/responsa-compliance.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [[ "${KEEP_LOG:-0}" == 1 ]]; then echo "compliance: server log kept in $WORK/server.log" >&2
  else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- the suite ---------------------------------------------------------------
if [[ -f "$SUITE/bin/compliance-test.ts" ]]; then
  SRC="$(cd "$SUITE" && pwd)"
elif git --git-dir="$SUITE" rev-parse --verify -q "${OR_REF:-HEAD}^{commit}" >/dev/null 2>&1 \
     || git --git-dir="$SUITE/.git" rev-parse --verify -q "${OR_REF:-HEAD}^{commit}" >/dev/null 2>&1; then
  GIT_DIR_="$SUITE"; [[ -d "$SUITE/.git" ]] && GIT_DIR_="$SUITE/.git"
  SRC="$WORK/suite"; mkdir -p "$SRC"
  git --git-dir="$GIT_DIR_" archive "${OR_REF:-HEAD}" | tar -x -C "$SRC"
else
  die "$SUITE is neither a checkout with bin/compliance-test.ts nor a git dir"
fi
[[ -f "$SRC/bin/compliance-test.ts" ]] || die "no bin/compliance-test.ts in the suite"

# --- the runner: bun, and zod (the suite's only import) ------------------------
if [[ -z "${BUN:-}" ]] && command -v bun >/dev/null; then BUN="$(command -v bun)"; fi
CACHE="${OR_CACHE_DIR:-$HOME/.cache/responsa-compliance}"
if [[ -z "${BUN:-}" || ! -d "$SRC/node_modules/zod" ]]; then
  if ! [[ -x "$CACHE/node_modules/.bin/bun" && -f "$CACHE/node_modules/zod/package.json" ]]; then
    command -v npm >/dev/null || die "bun not found and npm missing to install it"
    echo "compliance: installing bun@$BUN_VERSION zod@$ZOD_VERSION into $CACHE (npm registry)" >&2
    mkdir -p "$CACHE"
    [[ -f "$CACHE/package.json" ]] || echo '{"private":true}' > "$CACHE/package.json"
    (cd "$CACHE" && npm install --no-audit --no-fund --save-exact "bun@$BUN_VERSION" "zod@$ZOD_VERSION" >&2)
    "$CACHE/node_modules/.bin/bun" --version >/dev/null 2>&1 || (cd "$CACHE/node_modules/bun" && node install.js >&2)
  fi
  BUN="${BUN:-$CACHE/node_modules/.bin/bun}"
  if [[ ! -e "$SRC/node_modules" ]]; then
    [[ "$SRC" == "$WORK/suite" ]] || { cp -r "$SRC" "$WORK/suite"; SRC="$WORK/suite"; }
    ln -s "$CACHE/node_modules" "$SRC/node_modules"
  fi
fi
"$BUN" --version >/dev/null 2>&1 || die "bun at $BUN does not run"

# --- the server ----------------------------------------------------------------
PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$PYTHON" -m responsa.cli serve --host 127.0.0.1 --port "$PORT" --model test/echo \
  --database-url "sqlite:///$WORK/responsa.db" --log-level warning > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
  "$PYTHON" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=1)" \
    2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server did not start"; }
  sleep 0.1
done

# --- run -----------------------------------------------------------------------
OUT="${OUT:-${TMPDIR:-/tmp}/responsa-compliance.json}"
ARGS=(run bin/compliance-test.ts --base-url "http://127.0.0.1:$PORT/v1" --api-key dummy -m test --json)
[[ -n "${FILTER:-}" ]] && ARGS+=(-f "$FILTER")
echo "compliance: $SRC -> responsa serve on port $PORT (model test)" >&2
set +e
(cd "$SRC" && "$BUN" "${ARGS[@]}") > "$OUT"
RC=$?
set -e
"$PYTHON" - "$OUT" <<'EOF' || { echo "compliance: the runner (exit $RC) wrote no JSON:" >&2; cat "$OUT" >&2; exit 2; }
import json, sys
r = json.load(open(sys.argv[1]))
for t in r["results"]:
    tag = {"passed": "PASS", "failed": "FAIL"}.get(t["status"], "SKIP")
    err = "" if t["status"] == "passed" else "  " + str((t.get("errors") or [""])[0])[:200]
    print(f"{tag} {t['id']}{err}")
s = r["summary"]
print(f"{s['passed']} passed, {s['failed']} failed" + (f", {s['skipped']} skipped" if s.get("skipped") else "")
      + f" (of {s['total']})")
EOF
echo "compliance: JSON result in $OUT" >&2
exit $(( RC == 0 ? 0 : 1 ))
