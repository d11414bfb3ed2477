{{/* Copyright 2024 The aas-bundle authors. SPDX-License-Identifier: Apache-2.0 */}}

{{/* The chart name, or nameOverride. */}}
{{- define "shop-frontend.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A fully qualified app name: fullnameOverride, else the release name when it already
holds the chart name, else "<release>-<chart>". Cut at 63 characters (DNS labels).
*/}}
{{- define "shop-frontend.fullname" -}}
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

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "shop-frontend.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "shop-frontend.labels" -}}
helm.sh/chart: {{ include "shop-frontend.chart" . }}
{{ include "shop-frontend.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels the service selects pods by. */}}
{{- define "shop-frontend.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shop-frontend.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The service account to run as. */}}
{{- define "shop-frontend.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "shop-frontend.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}
