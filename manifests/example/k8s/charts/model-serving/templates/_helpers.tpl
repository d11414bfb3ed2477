{{/* Copyright 2024 The aas-bundle authors. SPDX-License-Identifier: Apache-2.0 */}}

{{- define "model-serving.labels" -}}
app.kubernetes.io/part-of: model-serving
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
