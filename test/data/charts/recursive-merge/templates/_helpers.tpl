{{/* Merges .over into .base, key by key, recursing into maps (returns YAML). */}}
{{- define "rm.merge" -}}
{{- $out := dict -}}
{{- range $k, $v := .base -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- range $k, $v := .over -}}
{{- if and (kindIs "map" $v) (kindIs "map" (get $out $k)) -}}
{{- $_ := set $out $k (include "rm.merge" (dict "base" (get $out $k) "over" $v) | fromYaml) -}}
{{- else -}}
{{- $_ := set $out $k $v -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Counts .n down to 0, then renders the image reference of .c. */}}
{{- define "rm.image" -}}
{{- if gt (int .n) 0 -}}
{{- include "rm.image" (dict "n" (sub (int .n) 1) "c" .c) -}}
{{- else -}}
{{- printf "%s/%s:%s" .c.image.registry .c.image.repository .c.image.tag -}}
{{- end -}}
{{- end -}}
