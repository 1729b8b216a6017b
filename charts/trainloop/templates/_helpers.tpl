{{/* The release's full name, at most 63 characters: the name of every object of the chart. */}}
{{- define "trainloop.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* What selects the operator's pods: stable across upgrades (selectors are immutable). */}}
{{- define "trainloop.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "trainloop.labels" -}}
{{ include "trainloop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "trainloop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "trainloop.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The operator's RBAC rules, from the one file that lists them (files/rbac/rules.yaml). */}}
{{- define "trainloop.rules" -}}
{{ .Files.Get "files/rbac/rules.yaml" }}
{{- end -}}
