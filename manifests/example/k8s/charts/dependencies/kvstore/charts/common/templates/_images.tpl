{{/* Copyright 2024 The aas-bundle authors. SPDX-License-Identifier: Apache-2.0 */}}

{{/*
The full reference of an image given as a map of registry, repository, tag and digest.
global.imageRegistry, when set, replaces the image's own registry; a digest, when set,
pins the image instead of the tag.

Usage:
  {{ include "common.images.image" (dict "imageRoot" .Values.image "global" .Values.global) }}
*/}}
{{- define "common.images.image" -}}
{{- $img := .imageRoot -}}
{{- $host := $img.registry -}}
{{- with .global -}}
  {{- with .imageRegistry -}}
    {{- $host = . -}}
  {{- end -}}
{{- end -}}
{{- $pin := printf ":%s" ($img.tag | toString) -}}
{{- if $img.digest -}}
  {{- $pin = printf "@%s" ($img.digest | toString) -}}
{{- end -}}
{{- printf "%s/%s%s" $host $img.repository $pin -}}
{{- end -}}

{{/*
The pull secrets of a list of images and the global ones, as an imagePullSecrets list.

Usage:
  {{ include "common.images.pullSecrets" (dict "images" (list .Values.image) "global" .Values.global) }}
*/}}
{{- define "common.images.pullSecrets" -}}
{{- $names := list -}}
{{- with .global -}}
  {{- range .imagePullSecrets -}}
    {{- $names = append $names . -}}
  {{- end -}}
{{- end -}}
{{- range .images -}}
  {{- range .pullSecrets -}}
    {{- $names = append $names . -}}
  {{- end -}}
{{- end -}}
{{- if $names }}
imagePullSecrets:
{{- range $names | uniq }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}
