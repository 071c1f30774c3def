#!/usr/bin/env bash
# Installs the pgvector extension into the local PostgreSQL server when it
# lacks it (vector stores on PostgreSQL need it; see README "Vector stores").
#
# Debian bookworm ships no pgvector binary package for PostgreSQL 15, so this
# builds Debian's own source release (the trixie source package's upstream
# tarball, checked against its md5) with the server's development headers,
# which are Debian packages too. Nothing here downloads from anywhere but
# Debian's archive. Idempotent: does nothing when `vector` is already available.
set -euo pipefail

VERSION=0.8.0
TARBALL="pgvector_${VERSION}.orig.tar.gz"
URL="http://deb.debian.org/debian/pool/main/p/pgvector/${TARBALL}"
MD5=a0a009e5d1ac9aa2b9d69241adcce307

major="${PG_MAJOR:-$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)}"
if [ -z "$major" ]; then
  echo "install-pgvector: no PostgreSQL server found in /etc/postgresql" >&2
  exit 1
fi
pg_config="/usr/lib/postgresql/${major}/bin/pg_config"

if [ -f "/usr/share/postgresql/${major}/extension/vector.control" ]; then
  echo "install-pgvector: vector is already available to PostgreSQL ${major}"
  exit 0
fi

echo "==> installing build dependencies (postgresql-server-dev-${major}, build-essential)"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s "postgresql-server-dev-${major}" build-essential >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq "postgresql-server-dev-${major}" build-essential >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "==> downloading ${URL}"
python3 - "$URL" "$work/$TARBALL" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
PY
echo "${MD5}  ${work}/${TARBALL}" | md5sum -c --quiet -
tar -xzf "$work/$TARBALL" -C "$work"
src="$(find "$work" -maxdepth 1 -mindepth 1 -type d | head -1)"
echo "==> building pgvector ${VERSION} for PostgreSQL ${major}"
# OPTFLAGS="": portable code (no -march=native), the binary may move machines.
make -s -C "$src" PG_CONFIG="$pg_config" OPTFLAGS="" >/dev/null
make -s -C "$src" PG_CONFIG="$pg_config" install >/dev/null
echo "==> pgvector ${VERSION} installed: CREATE EXTENSION vector works now"
