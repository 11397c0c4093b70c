{{/* Chart name. */}}
{{- define "latch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, unless the release name holds the chart name. */}}
{{- define "latch.fullname" -}}
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

{{/* Labels on every resource, without the component. */}}
{{- define "latch.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "latch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels of the server's resources. */}}
{{- define "latch.labels" -}}
{{ include "latch.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* Labels that select the node pods. */}}
{{- define "latch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "latch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "latch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "latch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "latch.secretName" -}}
{{- default (include "latch.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "latch.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
More than one node can run: fixed replicas above one, or autoscaling.
*/}}
{{- define "latch.multiNode" -}}
{{- if or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}true{{ end }}
{{- end }}

{{/*
Checks of values that would give a broken cluster; rendered by the
Deployment so that they fail helm template and helm install alike.
*/}}
{{- define "latch.validate" -}}
{{- if not .Values.publicURL }}
{{- fail "publicURL is required: the external URL clients reach Latch at, the same on every node" }}
{{- end }}
{{- if not (has .Values.store.driver (list "postgres" "sqlite")) }}
{{- fail (printf "store.driver must be postgres or sqlite, not %q" .Values.store.driver) }}
{{- end }}
{{- if and (eq .Values.store.driver "sqlite") (include "latch.multiNode" .) }}
{{- fail "store.driver sqlite serves one node only: set replicaCount 1 and autoscaling.enabled false, or use postgres" }}
{{- end }}
{{- if not .Values.secrets.existingSecret }}
{{- if not .Values.secrets.masterKey }}
{{- fail "secrets.masterKey is required (or secrets.existingSecret): every node must share one master key" }}
{{- end }}
{{- if and (eq .Values.store.driver "postgres") (not .Values.secrets.storeDSN) }}
{{- fail "secrets.storeDSN is required with store.driver postgres (or secrets.existingSecret)" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment shared by the nodes and the migration Job. */}}
{{- define "latch.env" -}}
- name: LATCH_CONFIG
  value: /etc/latch/latch.yaml
- name: LATCH_MASTER_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "latch.secretName" . }}
      key: LATCH_MASTER_KEY
{{- if eq .Values.store.driver "postgres" }}
- name: LATCH_STORE_DSN
  valueFrom:
    secretKeyRef:
      name: {{ include "latch.secretName" . }}
      key: LATCH_STORE_DSN
{{- end }}
{{- end }}
