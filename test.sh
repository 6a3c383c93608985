#!/usr/bin/env bash
# test.sh — the whole test suite of ehgate with its own set-up; CI (.ci/run) runs exactly this.
#
#   ./test.sh                      everything: tools, PostgreSQL, gofmt, vet, race tests,
#                                  bench module, cross-builds, the floor Go version
#   ./test.sh -run TestX ./pkg/    only `go test -race -count=1 <args>`, with the same set-up
#
# 1. Installs what the tests need when it is missing (xmlsec1, libxml2-utils, postgresql,
#    chromium) with apt-get when it runs as root or with password-less sudo; otherwise it says
#    what to install and which tests will skip. EHGATE_TEST_NO_INSTALL=1 never installs.
# 2. Starts a throwaway PostgreSQL cluster (initdb into a temporary directory, superuser
#    `postgres`, a random password, scram-sha-256 on 127.0.0.1 only, a free port) and exports
#    EHGATE_TEST_POSTGRES_URL to the tests; the cluster is stopped and deleted on exit. When
#    EHGATE_TEST_POSTGRES_URL is already set, that database is used and nothing is started.
#    Run as root, the server runs as the `postgres` account (PostgreSQL refuses root).
# 3. gofmt, go vet, go test -race of the module, then the bench module's tests.
# 4. Cross-builds: go vet and go test -c of every package for windows/amd64 and darwin/arm64
#    (these binaries cannot run here). EHGATE_TEST_NO_CROSS=1 skips this step.
# 5. The module's floor Go version (the go line of go.mod): vet and tests again with that
#    toolchain, which the go command fetches from the module proxy (GOTOOLCHAIN).
#    EHGATE_TEST_NO_FLOOR=1 skips this step.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf 'test.sh: %s\n' "$*"; }
started=$(date +%s)
step() { say "[$(( $(date +%s) - started ))s] $*"; }

command -v go >/dev/null 2>&1 || { say "go is not installed (https://go.dev/dl/)"; exit 1; }

# ---------------------------------------------------------------------------------------------
# 1. Tools
# ---------------------------------------------------------------------------------------------
pg_bindir() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"; return 0
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  return 1
}
have_chromium() {
  local b
  for b in chromium chromium-browser google-chrome google-chrome-stable headless-shell; do
    command -v "$b" >/dev/null 2>&1 && return 0
  done
  return 1
}

missing=()   # Debian packages
skips=()     # what will skip without them
command -v xmlsec1 >/dev/null 2>&1 || { missing+=(xmlsec1); skips+=("soap: signature interoperability tests against xmlsec1"); }
command -v xmllint >/dev/null 2>&1 || { missing+=(libxml2-utils); skips+=("tests that validate messages against the platform's XSDs with xmllint"); }
[ -n "${EHGATE_TEST_POSTGRES_URL:-}" ] || pg_bindir >/dev/null || { missing+=(postgresql); skips+=("PostgreSQL tests (they read EHGATE_TEST_POSTGRES_URL)"); }
have_chromium || { missing+=(chromium); skips+=("browser tests of the status page (chromium)"); }

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  can_install=0
  if [ -n "${EHGATE_TEST_NO_INSTALL:-}" ]; then
    :
  elif ! command -v apt-get >/dev/null 2>&1; then
    :
  elif [ "$(id -u)" -eq 0 ]; then
    can_install=1
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo"; can_install=1
  fi
  if [ $can_install -eq 1 ]; then
    step "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "missing: ${missing[*]} — install them, e.g.: sudo apt-get install ${missing[*]}"
    say "(macOS: brew install libxmlsec1 libxml2 postgresql; chromium or Google Chrome)"
    say "these tests will skip:"
    for s in "${skips[@]}"; do say "  - $s"; done
  fi
fi
if command -v xmlsec1 >/dev/null 2>&1; then say "$(xmlsec1 --version | head -n 1)"; fi

# ---------------------------------------------------------------------------------------------
# 2. A throwaway PostgreSQL on 127.0.0.1
# ---------------------------------------------------------------------------------------------
pgdir=""
crossdir=""
pgrun=()     # prefix that runs a command as the cluster's owner
cleanup() {
  local rc=$?
  if [ -n "$pgdir" ] && [ -d "$pgdir" ]; then
    if [ -f "$pgdir/data/postmaster.pid" ]; then
      "${pgrun[@]}" "$PGBIN/pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$pgdir"
  fi
  if [ -n "$crossdir" ]; then rm -rf "$crossdir"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  # A port nothing listens on now; the server's start is retried should another process take
  # it in between.
  local p i
  for i in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 30000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

start_postgres() {
  PGBIN=$(pg_bindir) || return 1
  pgdir=$(mktemp -d "${TMPDIR:-/tmp}/ehgate-pg.XXXXXX")
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || { say "running as root and no 'postgres' account: PostgreSQL tests will skip"; return 1; }
    chown postgres "$pgdir"
    if command -v runuser >/dev/null 2>&1; then pgrun=(runuser -u postgres --); else pgrun=(su postgres -s /bin/sh -c '"$0" "$@"'); fi
  else
    pgrun=(env)
  fi
  chmod 700 "$pgdir"
  local pw
  pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  ( umask 077; printf '%s\n' "$pw" >"$pgdir/pw" )
  [ "$(id -u)" -ne 0 ] || chown postgres "$pgdir/pw"
  "${pgrun[@]}" "$PGBIN/initdb" -D "$pgdir/data" -U postgres --pwfile="$pgdir/pw" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C >"$pgdir/initdb.log" 2>&1 \
    || { cat "$pgdir/initdb.log"; return 1; }
  # Loopback only: no other address is listened on, and pg_hba admits 127.0.0.1 alone.
  printf 'local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n' >"$pgdir/data/pg_hba.conf"
  local port try
  for try in 1 2 3 4 5; do
    port=$(free_port) || return 1
    if "${pgrun[@]}" "$PGBIN/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$pgdir -c max_connections=200" \
      start >/dev/null 2>&1; then
      local psql="$PGBIN/psql"
      [ -x "$psql" ] || psql=psql
      PGPASSWORD=$pw "$psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        -c 'CREATE DATABASE ehgate_test' >/dev/null || return 1
      export EHGATE_TEST_POSTGRES_URL="postgres://postgres:$pw@127.0.0.1:$port/ehgate_test?sslmode=disable"
      step "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $pgdir, removed on exit)"
      return 0
    fi
  done
  cat "$pgdir/server.log" 2>/dev/null || true
  return 1
}

if [ -n "${EHGATE_TEST_POSTGRES_URL:-}" ]; then
  say "using EHGATE_TEST_POSTGRES_URL from the environment"
elif pg_bindir >/dev/null; then
  start_postgres || { say "could not start PostgreSQL: PostgreSQL tests will skip"; unset EHGATE_TEST_POSTGRES_URL; }
fi

# Only some tests: `./test.sh <go test args>`.
if [ $# -gt 0 ]; then
  go test -race -count=1 "$@"
  exit $?
fi

# ---------------------------------------------------------------------------------------------
# 3. gofmt, vet, race tests, bench module
# ---------------------------------------------------------------------------------------------
step "gofmt"
if command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
  mapfile -t gofiles < <(git ls-files -co --exclude-standard '*.go')
else
  mapfile -t gofiles < <(find . -name '*.go' -not -path './.git/*')
fi
unformatted=$(gofmt -l "${gofiles[@]}")
if [ -n "$unformatted" ]; then
  say "gofmt: not formatted:"; echo "$unformatted"; exit 1
fi

step "go vet ./... && go test -race ./..."
go vet ./...
go test -race ./...

if [ -f bench/go.mod ]; then
  step "bench module"
  # The second run checks zero allocations, which -race hides.
  (cd bench && go vet ./... && go test -race ./... && go test -count=1 ./...)
fi

# ---------------------------------------------------------------------------------------------
# 4. Cross-builds for the desktops vendors ship to (built and vetted here, not run)
# ---------------------------------------------------------------------------------------------
if [ -z "${EHGATE_TEST_NO_CROSS:-}" ]; then
  crossdir=$(mktemp -d "${TMPDIR:-/tmp}/ehgate-cross.XXXXXX")
  for target in windows/amd64 darwin/arm64; do
    step "cross-build $target: go vet ./... and go test -c of every package (not run here)"
    GOOS=${target%/*} GOARCH=${target#*/} go vet ./...
    GOOS=${target%/*} GOARCH=${target#*/} go test -c -o "$crossdir/" ./...
    say "$target: $(ls "$crossdir" | wc -l) test binaries built"
    rm -rf "${crossdir:?}"/*
  done
  rm -rf "$crossdir"; crossdir=""
fi

# ---------------------------------------------------------------------------------------------
# 5. The floor Go version: the go line of go.mod, latest patch release the proxy serves
# ---------------------------------------------------------------------------------------------
if [ -z "${EHGATE_TEST_NO_FLOOR:-}" ]; then
  floor=$(awk '$1 == "go" {print $2; exit}' go.mod)          # e.g. 1.25.0
  minor=$(echo "$floor" | cut -d. -f1,2)                     # e.g. 1.25
  current=$(go env GOVERSION | sed 's/^go//' | cut -d. -f1,2)
  if [ "$current" = "$minor" ]; then
    say "floor Go $minor is the toolchain that ran the tests above"
  else
    hostplat="$(go env GOHOSTOS)-$(go env GOHOSTARCH)"
    floortc=$(cd "${TMPDIR:-/tmp}" && GOTOOLCHAIN=local GOFLAGS= go list -m -versions golang.org/toolchain 2>/dev/null | tr ' ' '\n' \
      | sed -n "s/^v0\.0\.1-\(go$minor\.[0-9]*\)\.$hostplat\$/\1/p" | sort -V | tail -n 1 || true)
    [ -n "$floortc" ] || floortc="go$floor"
    step "floor Go version ($floortc, go.mod says go $floor): go vet ./... && go test ./..."
    if ! GOTOOLCHAIN=$floortc go version >/dev/null; then
      say "could not fetch the $floortc toolchain from the module proxy (EHGATE_TEST_NO_FLOOR=1 skips this step)"
      exit 1
    fi
    GOTOOLCHAIN=$floortc go vet ./...
    GOTOOLCHAIN=$floortc go test ./...
  fi
fi

step "done"
