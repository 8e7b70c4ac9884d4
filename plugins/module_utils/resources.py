# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Map apiVersion/kind to REST paths without full API discovery.

Known kinds resolve from a table; an unknown kind costs one discovery request for its
group/version, cached for the run. A group/version the server does not serve raises
ResourceNotInstalled naming the CRD and the component that installs it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import ApiError, ResourceNotInstalled
from ansible_collections.aiinfra.cluster.plugins.module_utils.kube_client import path_quote

# (apiVersion, kind) -> (plural, namespaced)
KNOWN_KINDS = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("v1", "PersistentVolume"): ("persistentvolumes", False),
    ("v1", "ResourceQuota"): ("resourcequotas", True),
    ("v1", "LimitRange"): ("limitranges", True),
    ("v1", "Event"): ("events", True),
    ("v1", "Endpoints"): ("endpoints", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "ReplicaSet"): ("replicasets", True),
    ("batch/v1", "Job"): ("jobs", True),
    ("batch/v1", "CronJob"): ("cronjobs", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("scheduling.k8s.io/v1", "PriorityClass"): ("priorityclasses", False),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True),
    ("discovery.k8s.io/v1", "EndpointSlice"): ("endpointslices", True),
    ("storage.k8s.io/v1", "StorageClass"): ("storageclasses", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False),
    ("node.k8s.io/v1", "RuntimeClass"): ("runtimeclasses", False),
    ("coordination.k8s.io/v1", "Lease"): ("leases", True),
    # Third-party kinds this collection manages; a missing CRD is reported, not guessed.
    ("serving.kserve.io/v1beta1", "InferenceService"): ("inferenceservices", True),
    ("serving.kserve.io/v1alpha1", "ServingRuntime"): ("servingruntimes", True),
    ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"): ("clusterservingruntimes", False),
    ("data.fluid.io/v1alpha1", "Dataset"): ("datasets", True),
    ("data.fluid.io/v1alpha1", "AlluxioRuntime"): ("alluxioruntimes", True),
    ("data.fluid.io/v1alpha1", "JuiceFSRuntime"): ("juicefsruntimes", True),
    ("data.fluid.io/v1alpha1", "DataLoad"): ("dataloads", True),
    ("security.istio.io/v1", "AuthorizationPolicy"): ("authorizationpolicies", True),
    ("security.istio.io/v1", "PeerAuthentication"): ("peerauthentications", True),
    ("security.istio.io/v1", "RequestAuthentication"): ("requestauthentications", True),
    ("kubeflow.org/v1", "PyTorchJob"): ("pytorchjobs", True),
    ("kubeflow.org/v1", "TFJob"): ("tfjobs", True),
    ("trainer.kubeflow.org/v1alpha1", "TrainJob"): ("trainjobs", True),
    ("trainer.kubeflow.org/v1alpha1", "ClusterTrainingRuntime"): ("clustertrainingruntimes", False),
    ("trainer.kubeflow.org/v1alpha1", "TrainingRuntime"): ("trainingruntimes", True),
    ("jobset.x-k8s.io/v1alpha2", "JobSet"): ("jobsets", True),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("servicemonitors", True),
    ("monitoring.coreos.com/v1", "PodMonitor"): ("podmonitors", True),
    ("nvidia.com/v1", "ClusterPolicy"): ("clusterpolicies", False),
}

# API group -> the component whose installation brings its CRDs, for "not installed" messages.
GROUP_PROVIDERS = {
    "serving.kserve.io": "KServe (role aiinfra.cluster.kserve)",
    "data.fluid.io": "Fluid (role aiinfra.cluster.fluid)",
    "security.istio.io": "Istio (istioctl or the istio/base chart)",
    "networking.istio.io": "Istio (istioctl or the istio/base chart)",
    "kubeflow.org": "the Kubeflow training-operator",
    "trainer.kubeflow.org": "Kubeflow Trainer v2 (role aiinfra.cluster.training_platform)",
    "jobset.x-k8s.io": "JobSet (role aiinfra.cluster.training_platform)",
    "monitoring.coreos.com": "the Prometheus Operator (kube-prometheus-stack)",
    "nvidia.com": "the NVIDIA GPU Operator (role aiinfra.cluster.gpu_operator)",
    "cert-manager.io": "cert-manager (role aiinfra.cluster.kserve)",
}


def split_api_version(api_version):
    if "/" in api_version:
        group, version = api_version.split("/", 1)
        return group, version
    return "", api_version


class ResourceType:
    """A resolved kind: knows its collection and item paths."""

    def __init__(self, api_version, kind, plural, namespaced):
        self.api_version = api_version
        self.kind = kind
        self.plural = plural
        self.namespaced = namespaced
        self.group, self.version = split_api_version(api_version)

    @property
    def prefix(self):
        return "/api/%s" % self.version if not self.group else "/apis/%s/%s" % (self.group, self.version)

    @property
    def crd_name(self):
        return "%s.%s" % (self.plural, self.group) if self.group else self.plural

    def collection_path(self, namespace=None):
        if self.namespaced and namespace:
            return "%s/namespaces/%s/%s" % (self.prefix, path_quote(namespace), self.plural)
        return "%s/%s" % (self.prefix, self.plural)

    def item_path(self, name, namespace=None):
        if self.namespaced and not namespace:
            raise ValueError("%s %s needs a namespace" % (self.kind, name))
        return "%s/%s" % (self.collection_path(namespace), path_quote(name))

    def __repr__(self):
        return "ResourceType(%s %s)" % (self.api_version, self.kind)


class ResourceResolver:
    """Resolves kinds; discovery is one request per unknown group/version, cached."""

    def __init__(self, client):
        self.client = client
        self._discovered = {}

    def resolve(self, api_version, kind):
        known = KNOWN_KINDS.get((api_version, kind))
        if known is not None:
            return ResourceType(api_version, kind, known[0], known[1])
        resources = self._discover(api_version, kind)
        for res in resources:
            if res.get("kind") == kind and "/" not in res.get("name", ""):
                return ResourceType(api_version, kind, res["name"], res.get("namespaced", False))
        raise self.not_installed(api_version, kind, "%s does not serve kind %s" % (api_version, kind))

    def _discover(self, api_version, kind):
        if api_version not in self._discovered:
            group, version = split_api_version(api_version)
            path = "/api/%s" % version if not group else "/apis/%s/%s" % (group, version)
            try:
                body = self.client.get(path)
            except ApiError as exc:
                if exc.status == 404:
                    raise self.not_installed(api_version, kind, "the API %s is not served by this cluster" % api_version)
                raise
            self._discovered[api_version] = (body or {}).get("resources") or []
        return self._discovered[api_version]

    @staticmethod
    def not_installed(api_version, kind, why):
        group, _version = split_api_version(api_version)
        provider = GROUP_PROVIDERS.get(group)
        plural = KNOWN_KINDS.get((api_version, kind), (kind.lower() + "s",))[0]
        crd = "%s.%s" % (plural, group) if group else plural
        msg = "%s: kind %s is not installed (CRD %s)" % (why, kind, crd)
        if provider:
            msg += "; it is installed by %s" % provider
        return ResourceNotInstalled(msg, api_version=api_version, kind=kind, crd=crd)
