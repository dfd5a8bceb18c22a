{{/*
Helpers in the style of Onyx's chart (onyx.fullname / onyx.resourceName / onyx.labels).
*/}}
{{- define "onyx-r2r.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "onyx-r2r.fullname" -}}
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

{{/*
`<fullname>-<suffix>` capped at 63 characters with a hash suffix when truncated (same rule
as Onyx's onyx.resourceName). Call with (list . "suffix").
*/}}
{{- define "onyx-r2r.resourceName" -}}
{{- $ctx := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- $name := printf "%s-%s" (include "onyx-r2r.fullname" $ctx) $suffix -}}
{{- if gt (len $name) 63 -}}
{{- printf "%s-%s" ($name | trunc 54 | trimSuffix "-") (sha256sum $name | trunc 8) -}}
{{- else -}}
{{- $name -}}
{{- end -}}
{{- end }}

{{- define "onyx-r2r.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "onyx-r2r.labels" -}}
helm.sh/chart: {{ include "onyx-r2r.chart" . }}
{{ include "onyx-r2r.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "onyx-r2r.selectorLabels" -}}
app.kubernetes.io/name: {{ include "onyx-r2r.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "onyx-r2r.autoscaling.engine" -}}
{{- default "hpa" .Values.autoscaling.engine | lower -}}
{{- end }}

{{/* Name of the Secret holding every credential. */}}
{{- define "onyx-r2r.secretName" -}}
{{- default .Values.auth.secretName .Values.auth.existingSecret -}}
{{- end }}

{{/* Image of the worker, beat and migrations. */}}
{{- define "onyx-r2r.mirrorImage" -}}
{{- $tag := .Values.mirror_image.tag | default (printf "%s-r2r%s" .Values.global.onyxVersion .Chart.AppVersion) -}}
{{- $repository := required "mirror_image.repository is required: the registry you pushed deployment/images/build's worker image to" .Values.mirror_image.repository -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end }}

{{/* R2R's image: SciPhi's R2R with deployment/r2r/patches (deployment/r2r/Dockerfile). */}}
{{- define "onyx-r2r.r2rImage" -}}
{{- $tag := .Values.r2r.image.tag | default (printf "%s-r2r%s" (index .Chart.Annotations "onyx-r2r/r2r-version") .Chart.AppVersion) -}}
{{- $repository := required "r2r.image.repository is required: the registry you pushed deployment/images/build's r2r image to (SciPhi's R2R with deployment/r2r/patches)" .Values.r2r.image.repository -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end }}

{{/* Host of R2R's PostgreSQL (fully qualified: KEDA polls it from its own namespace). */}}
{{- define "onyx-r2r.postgresHost" -}}
{{- if .Values.r2rPostgres.enabled -}}
{{- printf "%s.%s.svc.cluster.local" (include "onyx-r2r.resourceName" (list . "postgres")) .Release.Namespace -}}
{{- else -}}
{{- required "r2rPostgres.externalHost is required when r2rPostgres.enabled=false" .Values.r2rPostgres.externalHost -}}
{{- end -}}
{{- end }}

{{- define "onyx-r2r.ledgerHost" -}}
{{- .Values.ledger.host | default (include "onyx-r2r.postgresHost" .) -}}
{{- end }}
{{- define "onyx-r2r.ledgerDatabase" -}}
{{- .Values.ledger.database | default .Values.r2rPostgres.database -}}
{{- end }}
{{- define "onyx-r2r.ledgerUser" -}}
{{- .Values.ledger.user | default .Values.r2rPostgres.user -}}
{{- end }}

{{/* Onyx's Redis host, fully qualified when it is a bare in-namespace service name. */}}
{{- define "onyx-r2r.redisHost" -}}
{{- $host := required "onyx.redis.host is required (Onyx's REDIS_HOST; with Onyx's bundled Redis: Onyx's release name)" .Values.onyx.redis.host -}}
{{- if contains "." $host -}}
{{- $host -}}
{{- else -}}
{{- printf "%s.%s.svc.cluster.local" $host .Release.Namespace -}}
{{- end -}}
{{- end }}

{{/* URL of the R2R server, as Onyx and the worker reach it. */}}
{{- define "onyx-r2r.r2rUrl" -}}
{{- if .Values.r2r.enabled -}}
{{- printf "http://%s:%v" (include "onyx-r2r.resourceName" (list . "server")) .Values.r2r.service.port -}}
{{- else -}}
{{- required "r2r.externalUrl is required when r2r.enabled=false" .Values.r2r.externalUrl -}}
{{- end -}}
{{- end }}

{{/*
Environment of every bridge container (worker, beat, migrations): the ConfigMap with the
non-secret settings plus the secret keys; with (list . true), Onyx's environment too (the
worker runs Onyx's backfill source).
*/}}
{{- define "onyx-r2r.bridgeEnv" -}}
{{- $ctx := index . 0 -}}
{{- $withOnyx := index . 1 -}}
envFrom:
  {{- if $withOnyx }}
  # Onyx's own environment first; the mirror's settings below win on a clash
  - configMapRef:
      name: {{ $ctx.Values.onyx.envConfigMapName }}
  {{- end }}
  - configMapRef:
      name: {{ include "onyx-r2r.resourceName" (list $ctx "mirror-env") }}
env:
  {{- if $withOnyx }}
  {{- range $ctx.Values.onyx.secretEnv }}
  - name: {{ .name }}
    valueFrom:
      secretKeyRef:
        name: {{ .secretName }}
        key: {{ .key }}
  {{- end }}
  {{- end }}
  {{- range $name, $key := dict "R2R_EMAIL" "r2r_email" "R2R_PASSWORD" "r2r_password" "ONYX_R2R_DATABASE_URL" "ledger_database_url" "ONYX_R2R_BROKER_URL" "broker_url" }}
  - name: {{ $name }}
    valueFrom:
      secretKeyRef:
        name: {{ include "onyx-r2r.secretName" $ctx }}
        key: {{ $key }}
  {{- end }}
  - name: ONYX_R2R_ENCRYPTION_KEY
    valueFrom:
      secretKeyRef:
        name: {{ include "onyx-r2r.secretName" $ctx }}
        key: encryption_key
        optional: true
{{- end }}

{{/* Exec probe: Celery remote-control ping to this pod's worker. */}}
{{- define "onyx-r2r.workerPing" -}}
exec:
  command:
    - /bin/sh
    - -c
    - celery -A onyx.r2r_sender.tasks inspect ping -d "r2r_mirror@${HOSTNAME}" --timeout 10 >/dev/null
{{- end }}
