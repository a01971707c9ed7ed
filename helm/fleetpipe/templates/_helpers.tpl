{{/* Names, labels and the image, shared by every template. */}}

{{- define "fleetpipe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's prefix for every object name (<= 40 characters: names get a suffix). */}}
{{- define "fleetpipe.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "fleetpipe.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels of one component: dict "root" $ "component" "operator". */}}
{{- define "fleetpipe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fleetpipe.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fleetpipe.labels" -}}
{{ include "fleetpipe.selectorLabels" . }}
app.kubernetes.io/part-of: fleetpipe
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "fleetpipe.chart" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "fleetpipe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (printf "%s-operator" (include "fleetpipe.fullname" .)) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: the existing ServiceAccount the operator runs as" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "fleetpipe.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{- define "fleetpipe.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "fleetpipe.imageTag" .) -}}
{{- end -}}

{{/* An image of the dev dependencies: the values under dev.<name>.image. */}}
{{- define "fleetpipe.devImage" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{/* Pod-level settings every pod of the chart shares. */}}
{{- define "fleetpipe.podCommon" -}}
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "fleetpipe.kafkaBootstrap" -}}
{{- printf "%s-kafka.%s.svc:9092" (include "fleetpipe.fullname" .) .Release.Namespace -}}
{{- end -}}

{{- define "fleetpipe.networkPolicyPorts" -}}
{{- range . }}
- protocol: TCP
  port: {{ . }}
{{- end }}
{{- end -}}

{{/* Egress to cluster DNS, which every pod that resolves a Service name needs. */}}
{{- define "fleetpipe.dnsEgress" -}}
- ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end -}}
