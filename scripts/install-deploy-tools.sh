#!/usr/bin/env bash
# Installs what scripts/validate-deploy.sh needs, idempotently, into .flow/tools:
#  - helm, built from its Go module (helm.sh/helm/v3, pinned) into .flow/tools/go/bin;
#  - kubernetes-validate and its dependencies, and hadolint (pinned in deploy/requirements.txt)
#    into .flow/tools/deploy-venv.
# Run by `npm run validate:deploy` and `npm test` (so CI; the deployment tests need them), not by
# `npm start`, which does not need them; a second run only compares two stamp files.
# The compose check needs nothing here: dclint is a devDependency (node_modules).
set -euo pipefail
cd "$(dirname "$0")/.."
tools=".flow/tools"
HELM_VERSION="v3.22.0"

say() { printf 'install-deploy-tools: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- helm: a Go build (about 2.5 minutes on 2 cores with empty Go caches; seconds when cached).
helm_bin="$tools/go/bin/helm"
helm_stamp="$tools/go/bin/.helm-version"
if [ -x "$helm_bin" ] && [ "$(cat "$helm_stamp" 2>/dev/null)" = "$HELM_VERSION" ]; then
  :
else
  go_bin="$(command -v go || true)"
  [ -n "$go_bin" ] || { [ -x /usr/local/go/bin/go ] && go_bin=/usr/local/go/bin/go; }
  [ -n "$go_bin" ] || die "Go is needed to build helm $HELM_VERSION (apt-get install golang-go, or put go on PATH)"
  say "building helm $HELM_VERSION from its Go module into $tools/go/bin (a few minutes the first time)"
  mkdir -p "$tools/go/bin"
  # -X sets the version `helm version` prints (helm's own Makefile does the same); -s -w drop debug info.
  GOBIN="$PWD/$tools/go/bin" GOFLAGS=-buildvcs=false "$go_bin" install \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  "$helm_bin" version --short >/dev/null 2>&1 || die "go install of helm $HELM_VERSION produced no working binary"
  printf '%s\n' "$HELM_VERSION" > "$helm_stamp"
fi

# --- kubernetes-validate and hadolint in a venv of its own (the Temporal CLI's venv stays untouched).
venv="$tools/deploy-venv"
venv_stamp="$venv/.requirements.sha256"
want="$(sha256sum deploy/requirements.txt | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$venv_stamp" 2>/dev/null)" = "$want" ]; then
  :
else
  say "installing kubernetes-validate (deploy/requirements.txt) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r deploy/requirements.txt
  "$venv/bin/python" -c 'import kubernetes_validate, jsonschema, yaml' || die "kubernetes-validate did not install into $venv"
  "$venv/bin/hadolint" --version >/dev/null || die "hadolint did not install into $venv"
  printf '%s\n' "$want" > "$venv_stamp"
fi
