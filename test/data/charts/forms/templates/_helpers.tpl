{{/* The agent image: the FIPS build, whose tag is the version with "-fips". */}}
{{- define "forms.agentImage" -}}
{{ .Values.agent.repository }}:{{ .Values.agent.tag }}-fips
{{- end -}}
