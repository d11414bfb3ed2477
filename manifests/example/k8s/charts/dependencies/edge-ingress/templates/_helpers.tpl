{{/* Copyright 2024 The aas-bundle authors. SPDX-License-Identifier: Apache-2.0 */}}

{{- define "edge-ingress.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edge-ingress.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/*
The controller image as "registry/image:tag@digest". With controller.image.chroot the
image is "<image>-chroot", pinned by digestChroot instead of digest. A digest that is
empty leaves "registry/image:tag".
*/}}
{{- define "edge-ingress.image" -}}
{{- $i := .Values.controller.image -}}
{{- if $i.chroot -}}
{{ $i.registry }}/{{ $i.image }}-chroot:{{ $i.tag }}{{ with $i.digestChroot }}@{{ . }}{{ end }}
{{- else -}}
{{ $i.registry }}/{{ $i.image }}:{{ $i.tag }}{{ with $i.digest }}@{{ . }}{{ end }}
{{- end -}}
{{- end -}}
