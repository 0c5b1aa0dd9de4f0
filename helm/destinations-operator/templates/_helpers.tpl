{{/* The chart's name, or nameOverride. */}}
{{- define "destinations.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, used for every object of the release. */}}
{{- define "destinations.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "destinations.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "destinations.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "destinations.selectorLabels" -}}
app.kubernetes.io/name: {{ include "destinations.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "destinations.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "destinations.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: destinations
{{- end }}

{{- define "destinations.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "destinations.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "destinations.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "destinations.syncImage" -}}
{{- $repository := default .Values.image.repository .Values.syncPods.image.repository }}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.syncPods.image.tag }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{- define "destinations.webhookService" -}}
{{- printf "%s-webhook" (include "destinations.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "destinations.webhookCertificate" -}}
{{- printf "%s-webhook" (include "destinations.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* More than one replica: kopf peering, so only one replica handles objects at a time. */}}
{{- define "destinations.peering" -}}
{{- if gt (int .Values.replicaCount) 1 }}{{ include "destinations.fullname" . }}{{ end }}
{{- end }}

{{/*
The operator's permissions, split by scope so a namespaced install can grant the namespaced part per
namespace. Together they are exactly the rules of manifests/base/rbac.yaml (tests/shipping checks it).
*/}}
{{- define "destinations.namespacedRules" -}}
# The custom resources: watched; Authorizations' finalizer patched while in use; finished jobs purged.
- apiGroups: [destinations.dev]
  resources: [destinationjobs]
  verbs: [list, watch, delete]
- apiGroups: [destinations.dev]
  resources: [authorizations]
  verbs: [list, watch, patch]
- apiGroups: [destinations.dev]
  resources: [destinationjobs/status, authorizations/status]
  verbs: [patch]
# Sync pods' ownerReferences set blockOwnerDeletion (a foreground delete of a job waits for its pods);
# where the API server enforces owner-reference permissions (OwnerReferencesPermissionEnforcement, on
# by default in OpenShift) that needs update on the job's finalizers. Checked by admission, never called.
- apiGroups: [destinations.dev]
  resources: [destinationjobs/finalizers]
  verbs: [update]
# Sync pods: one per run, read for their result (and on restart), deleted by history limits.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
# Authorization health: the referenced Secret exists and holds the method's keys; re-checked on change.
# patch: a rotated OAuth2 refresh token is written back (docs/providers.md, "OAuth2 tokens").
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, patch]
# Kubernetes Events on jobs and authorizations (core v1, as kopf and the operator post them).
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}

{{- define "destinations.clusterRules" -}}
# kopf: resource discovery. (Namespaces are named exactly, never by glob: kopf need not watch them.)
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end }}

{{- define "destinations.peeringRules" -}}
# A standby replica (replicas > 1): kopf peering.
- apiGroups: [kopf.dev]
  resources: [clusterkopfpeerings, kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}

{{- define "destinations.webhookRules" -}}
# Admission webhooks in managed mode: the operator keeps its configurations' caBundle current.
- apiGroups: [admissionregistration.k8s.io]
  resources: [validatingwebhookconfigurations, mutatingwebhookconfigurations]
  verbs: [get, patch]
{{- end }}

{{/* One admission webhook of the configurations; the paths are the operator's handler ids. */}}
{{- define "destinations.webhook" -}}
- name: {{ .name }}.destinations.dev
  clientConfig:
    service:
      name: {{ .service }}
      namespace: {{ .namespace }}
      path: /{{ .name }}
      port: 443
  rules:
    - apiGroups: [destinations.dev]
      apiVersions: [v1]
      resources: [{{ .resource }}]
      operations: [{{ join ", " .operations }}]
      scope: Namespaced
  sideEffects: None
  failurePolicy: {{ .failurePolicy }}
  timeoutSeconds: {{ .timeoutSeconds }}
  admissionReviewVersions: [v1]
  matchPolicy: Equivalent
  namespaceSelector:
    matchExpressions:
      - key: kubernetes.io/metadata.name
        operator: NotIn
        values: [kube-system]
{{- end }}
