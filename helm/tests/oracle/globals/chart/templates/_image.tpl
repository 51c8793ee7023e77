{{- define "platform.image" -}}
{{- $registry := .image.registry -}}
{{- if .global.imageRegistry }}{{ $registry = .global.imageRegistry }}{{ end -}}
{{ $registry }}/{{ .image.repository }}:{{ .image.tag }}
{{- end -}}
