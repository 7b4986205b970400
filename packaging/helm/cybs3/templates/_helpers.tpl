{{/* Names and labels shared by every template. */}}

{{- define "cybs3.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's objects are named after it, with "cybs3" added unless it is already there. */}}
{{- define "cybs3.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cybs3.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cybs3.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cybs3.labels" -}}
{{ include "cybs3.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The drive paths, comma-separated, as `--drives` takes them: a directory inside each
volume, since a fresh volume may hold lost+found and a new drive must start empty. */}}
{{- define "cybs3.drivePaths" -}}
{{- $paths := list -}}
{{- range $i := until (int .Values.drives.count) -}}
{{- $paths = append $paths (printf "/drives/d%d/cybs3" $i) -}}
{{- end -}}
{{- join "," $paths -}}
{{- end -}}

{{/* The probes' scheme: the health endpoints are on the S3 port, over HTTPS with TLS. */}}
{{- define "cybs3.scheme" -}}
{{- if .Values.tls.enabled -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}
