{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "flow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name; every object's name starts with it. */}}
{{- define "flow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "flow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "flow.labels" -}}
helm.sh/chart: {{ include "flow.chart" . }}
{{ include "flow.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flow
{{- end }}

{{- define "flow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "flow.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flow.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "flow.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "flow.secretName" -}}
{{- if .Values.secret.create }}
{{- printf "%s-secrets" (include "flow.fullname" .) }}
{{- else }}
{{- required "secret.existingSecret must name a Secret with DATABASE_URL and FLOW_JWT_SECRET (or set secret.create=true)" .Values.secret.existingSecret }}
{{- end }}
{{- end }}

{{/* The task queue a worker pool polls (workflows/taskQueues.ts: poolTaskQueue). */}}
{{- define "flow.poolTaskQueue" -}}
{{- $queue := .root.Values.temporal.taskQueue }}
{{- if eq .pool "trajectory" }}{{ printf "%s-trajectories" $queue }}
{{- else if eq .pool "cpu" }}{{ printf "%s-cpu" $queue }}
{{- else }}{{ $queue }}
{{- end }}
{{- end }}

{{/* Settings every Flow container shares: Temporal's address, the ConfigMap, the Secret. */}}
{{- define "flow.sharedEnv" -}}
- name: TEMPORAL_ADDRESS
  value: {{ .Values.temporal.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
- name: FLOW_TASK_QUEUE
  value: {{ .Values.temporal.taskQueue | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "service.namespace=flow,deployment.environment=%s" .Release.Namespace | quote }}
- name: FLOW_METRICS_PORT
  value: {{ ternary .Values.metrics.otelPort 0 .Values.metrics.enabled | quote }}
{{- end }}

{{/*
Settings the chart sets itself in the pods' env. In `config` the pods' env would win over the
ConfigMap; in `api.env` or a pool's `env` they would win over the chart's own value. Either way one
of them would be silently ignored, so such a key is refused, naming the value that sets it.
*/}}
{{- define "flow.refuseChartManagedEnv" -}}
{{- $managed := dict
  "TEMPORAL_ADDRESS" "temporal.address"
  "TEMPORAL_NAMESPACE" "temporal.namespace"
  "FLOW_TASK_QUEUE" "temporal.taskQueue"
  "FLOW_METRICS_PORT" "metrics.otelPort (metrics.enabled=false for none)"
  "FLOW_TEMPORAL_METRICS_PORT" "metrics.temporalSdkPort (metrics.enabled=false for none)"
  "FLOW_API_PORT" "api.port"
  "FLOW_API_HOST" "nothing (the API listens on every address of its pod)"
  "FLOW_WORKER_POOL" "workers.pools (one Deployment per pool)"
  "FLOW_WORKER_HEALTH_PORT" "workers.healthPort"
  "FLOW_WORKER_SHUTDOWN_GRACE_S" "the pool's terminationGracePeriodSeconds (the grace is 10 s less)"
  "OTEL_SERVICE_NAME" "nothing (each Deployment names its own service)"
  "OTEL_RESOURCE_ATTRIBUTES" "nothing (the chart sets it from the release namespace)"
}}
{{- if .Values.temporal.uiUrl }}
{{- $_ := set $managed "FLOW_TEMPORAL_UI_URL" "temporal.uiUrl (set one of the two)" }}
{{- end }}
{{- $places := dict "config" .Values.config "api.env" (.Values.api.env | default dict) }}
{{- range $pool, $cfg := .Values.workers.pools }}
{{- $_ := set $places (printf "workers.pools.%s.env" $pool) ($cfg.env | default dict) }}
{{- end }}
{{- range $place, $values := $places }}
{{- range $key, $_ := $values }}
{{- if hasKey $managed $key }}
{{- fail (printf "%s.%s is set by the chart from %s, and one of the two would be silently ignored: set that instead" $place $key (get $managed $key)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "flow.envFrom" -}}
- configMapRef:
    name: {{ include "flow.fullname" . }}-config
- secretRef:
    name: {{ include "flow.secretName" . }}
{{- end }}

{{/* Writable scratch space: the root filesystem is read-only. */}}
{{- define "flow.scratchVolumes" -}}
- name: tmp
  emptyDir: {}
- name: blobs
  emptyDir: {}
{{- end }}

{{- define "flow.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: blobs
  mountPath: /data/blobs
{{- end }}
