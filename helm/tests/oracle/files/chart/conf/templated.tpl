name: {{ .Release.Name }}
