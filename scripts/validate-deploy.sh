#!/usr/bin/env bash
# Validates the deployment artifacts offline (no cluster, no Docker daemon, no network):
#   docker   the Dockerfile with hadolint (a non-root last USER, JSON-form commands, pinned bases...)
#   compose  docker-compose.yml against the compose specification's JSON schema, plus lint
#            rules (dclint, which ships the schema; deploy/dclint.json turns off ordering rules),
#            and deploy/prometheus/prometheus.yml with `promtool check config`
#   helm     `helm lint --strict` and `helm template` of helm/flow for each values variant;
#            rendered manifests go to .flow/deploy/rendered/<variant>.yaml
#   k8s      the rendered manifests against the Kubernetes schemas of the oldest and newest
#            supported versions (kubernetes-validate, strict) and KEDA's ScaledObject against
#            deploy/schemas/ (deploy/validate_manifests.py)
# usage: scripts/validate-deploy.sh [all|docker|compose|helm|k8s] [FILE...]
#   With FILEs, `docker`, `compose` and `k8s` check those files instead of the project's own, which is
#   how tests show that a broken file fails. Exits non-zero when any check fails.
# Tools: scripts/install-deploy-tools.sh (run by `npm run validate:deploy` and `npm test`) installs helm and
# kubernetes-validate and hadolint into .flow/tools; dclint comes with `npm ci`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

HELM="${FLOW_HELM:-$root/.flow/tools/go/bin/helm}"
PYTHON="${FLOW_DEPLOY_PYTHON:-$root/.flow/tools/deploy-venv/bin/python}"
# The chart's kubeVersion floor and the newest schemas kubernetes-validate 1.37 ships.
KUBE_VERSIONS=(1.25.0 1.37.0)
CHART=helm/flow
RENDERED=.flow/deploy/rendered

say() { printf 'validate-deploy: %s\n' "$*"; }
need() { [ -x "$1" ] || { say "error: $1 is missing; run scripts/install-deploy-tools.sh"; exit 2; }; }

check_docker() {
  local files=("$@")
  [ ${#files[@]} -gt 0 ] || files=(Dockerfile)
  local hadolint
  hadolint="$(dirname "$PYTHON")/hadolint"
  need "$hadolint"
  say "docker: ${files[*]} (hadolint)"
  "$hadolint" --no-color "${files[@]}"
  say "docker: ok"
}

check_compose() {
  local files=("$@")
  [ ${#files[@]} -gt 0 ] || files=(docker-compose.yml)
  say "compose: ${files[*]} (compose-spec JSON schema + lint, dclint)"
  NO_COLOR=1 npx --no-install dclint --config deploy/dclint.json --max-warnings 0 "${files[@]}"
  if [ $# -eq 0 ]; then
    # The Prometheus configuration the compose file mounts (Debian's promtool, which
    # scripts/install-infra.sh installs for the metrics tests).
    if command -v promtool >/dev/null; then
      promtool check config deploy/prometheus/prometheus.yml
    else
      say "compose: promtool is missing, deploy/prometheus/prometheus.yml not checked (apt-get install prometheus)"
    fi
  fi
  say "compose: ok"
}

# variant name, then helm arguments
VARIANTS=(
  "default|"
  "small|-f $CHART/values-small.yaml"
  "large|-f $CHART/values-large.yaml"
  # Everything optional switched on: a chart-made Secret, KEDA with a TriggerAuthentication, a PodMonitor.
  "options|-f $CHART/values-large.yaml --set secret.create=true --set secret.values.DATABASE_URL=postgresql://flow@db/flow --set secret.values.FLOW_JWT_SECRET=0123456789abcdef0123456789abcdef --set workers.pools.trajectory.keda.authenticationRef=temporal-cloud-api-key --set api.podDisruptionBudget.maxUnavailable=1 --set metrics.podMonitor.enabled=true --set metrics.podMonitor.labels.release=kube-prometheus-stack"
  # Migrations run elsewhere: the chart-made Secret must still exist before the search-attribute hook.
  "no-migrations|--set migrations.enabled=false --set secret.create=true --set secret.values.DATABASE_URL=postgresql://flow@db/flow --set secret.values.FLOW_JWT_SECRET=0123456789abcdef0123456789abcdef --set config.TEMPORAL_TLS=true --set temporal.namespace=other"
)

check_helm() {
  need "$HELM"
  mkdir -p "$RENDERED"
  local variant name args
  for variant in "${VARIANTS[@]}"; do
    name="${variant%%|*}"
    args="${variant#*|}"
    say "helm: lint and template, values '$name'"
    # shellcheck disable=SC2086 # args is a list of flags
    "$HELM" lint --strict --quiet --kube-version "${KUBE_VERSIONS[-1]}" "$CHART" $args
    # shellcheck disable=SC2086
    "$HELM" template flow "$CHART" --namespace flow --kube-version "${KUBE_VERSIONS[-1]}" $args > "$RENDERED/$name.yaml"
  done
  say "helm: ok (rendered into $RENDERED/)"
}

check_k8s() {
  need "$PYTHON"
  local files=("$@")
  if [ ${#files[@]} -eq 0 ]; then
    local variant
    for variant in "${VARIANTS[@]}"; do files+=("$RENDERED/${variant%%|*}.yaml"); done
  fi
  local versions=()
  local v
  for v in "${KUBE_VERSIONS[@]}"; do versions+=(--kube-version "$v"); done
  say "k8s: ${files[*]}"
  "$PYTHON" deploy/validate_manifests.py "${versions[@]}" "${files[@]}"
  say "k8s: ok"
}

what="${1:-all}"
[ $# -gt 0 ] && shift
case "$what" in
  docker) check_docker "$@" ;;
  compose) check_compose "$@" ;;
  helm) check_helm ;;
  k8s) check_k8s "$@" ;;
  all) check_docker; check_compose; check_helm; check_k8s ;;
  *) say "usage: scripts/validate-deploy.sh [all|docker|compose|helm|k8s] [FILE...]"; exit 2 ;;
esac
