# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Pure builders for GPU observability: the DCGM exporter (DaemonSet + Service [+ ServiceMonitor])
and TensorBoard (Deployment + Service [+ Istio policies]). Params -> list of manifests."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.istio_builder import build_istio_policies

DCGM_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter:4.6.0-4.8.3-distroless"
DCGM_PORT = 9400
POD_RESOURCES_DIR = "/var/lib/kubelet/pod-resources"
# The GPU Operator's own exporter: DaemonSet/Service nvidia-dcgm-exporter, pods labelled so.
GPU_OPERATOR_EXPORTER_LABEL = "app=nvidia-dcgm-exporter"
TENSORBOARD_IMAGE = "tensorflow/tensorflow:2.21.0"
TENSORBOARD_PORT = 6006
MANAGER = "aiinfra.cluster"


def _labels(name, component):
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": MANAGER,
    }


def _selector(name, component):
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": name}


def _meta(params, component):
    return {"name": params["name"], "namespace": params["namespace"], "labels": _labels(params["name"], component)}


def build_dcgm_exporter(params):
    """DaemonSet on GPU nodes only + Service (+ ServiceMonitor when `service_monitor` is true)."""
    name = params["name"]
    node_selector = params.get("node_selector")
    if node_selector is None:
        node_selector = {"nvidia.com/gpu.present": "true"}
    if not node_selector:
        raise InputError("option node_selector must not be empty: the exporter must run on GPU nodes only (default nvidia.com/gpu.present=true)")
    interval = params.get("scrape_interval") or "15s"
    pod_resources = params.get("pod_resources", True)
    env = [
        {"name": "DCGM_EXPORTER_LISTEN", "value": ":%d" % DCGM_PORT},
        # Adds namespace/pod/container labels through the kubelet's pod-resources socket.
        {"name": "DCGM_EXPORTER_KUBERNETES", "value": "true" if pod_resources else "false"},
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        # The exporter requests no nvidia.com/gpu: these ask the NVIDIA runtime for every GPU and the
        # driver libraries (NVML) it monitors them with.
        {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
        {"name": "NVIDIA_DRIVER_CAPABILITIES", "value": "compute,utility"},
    ]
    volumes, mounts = [], []
    if pod_resources:
        volumes.append({"name": "pod-resources", "hostPath": {"path": POD_RESOURCES_DIR, "type": "Directory"}})
        mounts.append({"name": "pod-resources", "mountPath": POD_RESOURCES_DIR, "readOnly": True})
    objects = []
    if params.get("metrics_csv"):
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": dict(_meta(params, "dcgm-exporter"), name="%s-metrics" % name),
                "data": {"dcgm-metrics.csv": params["metrics_csv"]},
            }
        )
        volumes.append({"name": "metrics", "configMap": {"name": "%s-metrics" % name}})
        mounts.append({"name": "metrics", "mountPath": "/etc/dcgm-exporter/custom", "readOnly": True})
        env.append({"name": "DCGM_EXPORTER_COLLECTORS", "value": "/etc/dcgm-exporter/custom/dcgm-metrics.csv"})
    security = dcgm_security_context(params.get("profiling_metrics", True), pod_resources)
    container = {
        "name": "exporter",
        "image": params.get("image") or DCGM_IMAGE,
        "env": env,
        "ports": [{"name": "metrics", "containerPort": DCGM_PORT, "protocol": "TCP"}],
        "securityContext": security,
        "livenessProbe": {"httpGet": {"path": "/health", "port": DCGM_PORT}, "initialDelaySeconds": 45, "periodSeconds": 10},
        "readinessProbe": {"httpGet": {"path": "/health", "port": DCGM_PORT}, "initialDelaySeconds": 15, "periodSeconds": 10},
    }
    if mounts:
        container["volumeMounts"] = mounts
    if params.get("image_pull_policy"):
        container["imagePullPolicy"] = params["image_pull_policy"]
    if params.get("resources"):
        container["resources"] = params["resources"]
    tolerations = list(params.get("tolerations") or [])
    if not any(t.get("key") == "nvidia.com/gpu" for t in tolerations):
        tolerations.append({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
    pod_spec = {
        "nodeSelector": dict((k, str(v)) for k, v in node_selector.items()),
        "tolerations": tolerations,
        "automountServiceAccountToken": False,
        "containers": [container],
    }
    if volumes:
        pod_spec["volumes"] = volumes
    runtime_class = params.get("runtime_class_name", "nvidia")
    if runtime_class:
        # Where nvidia is not containerd's default runtime (CDI, or the toolkit role's non-default setting)
        # only this handler gives the container the GPUs and driver libraries.
        pod_spec["runtimeClassName"] = runtime_class
    if params.get("priority_class_name"):
        pod_spec["priorityClassName"] = params["priority_class_name"]
    if params.get("image_pull_secrets"):
        pod_spec["imagePullSecrets"] = [{"name": n} for n in params["image_pull_secrets"]]
    selector = _selector(name, "dcgm-exporter")
    objects.append(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": _meta(params, "dcgm-exporter"),
            "spec": {
                "selector": {"matchLabels": selector},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                "template": {"metadata": {"labels": _labels(name, "dcgm-exporter")}, "spec": pod_spec},
            },
        }
    )
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": dict(_meta(params, "dcgm-exporter"), annotations={"prometheus.io/scrape": "true", "prometheus.io/port": str(DCGM_PORT)}),
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "metrics", "port": DCGM_PORT, "targetPort": "metrics", "protocol": "TCP"}],
            },
        }
    )
    if params.get("service_monitor"):
        monitor_meta = _meta(params, "dcgm-exporter")
        monitor_meta["labels"].update(params.get("service_monitor_labels") or {})
        objects.append(
            {
                "apiVersion": "monitoring.coreos.com/v1",
                "kind": "ServiceMonitor",
                "metadata": monitor_meta,
                "spec": {
                    "selector": {"matchLabels": selector},
                    "namespaceSelector": {"matchNames": [params["namespace"]]},
                    # Keep the node name: the exporter reports it as Hostname/hostname only.
                    "endpoints": [
                        {
                            "port": "metrics",
                            "path": "/metrics",
                            "interval": interval,
                            "relabelings": [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"}],
                        }
                    ],
                },
            }
        )
    return objects


def dcgm_security_context(profiling_metrics, pod_resources):
    """Least privilege that still works: profiling metrics need SYS_ADMIN; the kubelet's pod-resources
    socket can be opened by root only, so the pod mapping runs as root, without any capability; only
    with neither does the exporter run as a non-root user."""
    if profiling_metrics:
        return {"runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False, "capabilities": {"add": ["SYS_ADMIN"], "drop": ["ALL"]}}
    if pod_resources:
        return {"runAsUser": 0, "runAsNonRoot": False, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    return {"runAsUser": 1000, "runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def gpu_operator_exporter(daemonsets, cluster_policies):
    """Describe the GPU Operator's own DCGM exporter if one runs or is configured, else None.
    `daemonsets`: DaemonSets labelled app=nvidia-dcgm-exporter; `cluster_policies`: ClusterPolicy objects."""
    for ds in daemonsets or []:
        meta = ds.get("metadata") or {}
        return "DaemonSet %s/%s (the NVIDIA GPU Operator's DCGM exporter)" % (meta.get("namespace"), meta.get("name"))
    for policy in cluster_policies or []:
        exporter = (policy.get("spec") or {}).get("dcgmExporter") or {}
        if exporter.get("enabled", True) is not False:
            return "ClusterPolicy %s with dcgmExporter enabled (the GPU Operator deploys nvidia-dcgm-exporter)" % (policy.get("metadata") or {}).get("name")
    return None


def build_tensorboard(params):
    """Deployment + Service serving a log dir from a PVC or object storage (+ Istio policies)."""
    name = params["name"]
    log_dir = params.get("log_dir") or {}
    uri = params.get("log_dir_uri")
    if bool(log_dir.get("claim_name")) == bool(uri):
        raise InputError("set exactly one of log_dir.claim_name (a PVC with the event files) or log_dir_uri (gs://, s3://, ...)")
    port = TENSORBOARD_PORT
    volumes, mounts = [], []
    if uri:
        logdir = uri
    else:
        mount_path = log_dir.get("mount_path") or "/logs"
        volumes.append({"name": "logs", "persistentVolumeClaim": {"claimName": log_dir["claim_name"], "readOnly": True}})
        mount = {"name": "logs", "mountPath": mount_path, "readOnly": True}
        if log_dir.get("sub_path"):
            mount["subPath"] = log_dir["sub_path"]
        mounts.append(mount)
        logdir = mount_path
    # TensorBoard writes nothing but its own cache; give it a scratch HOME so it runs as non-root.
    volumes.append({"name": "home", "emptyDir": {}})
    mounts.append({"name": "home", "mountPath": "/home/tensorboard"})
    env = [{"name": "HOME", "value": "/home/tensorboard"}]
    env += [{"name": k, "value": str(v)} for k, v in sorted((params.get("env") or {}).items())]
    container = {
        "name": "tensorboard",
        "image": params.get("image") or TENSORBOARD_IMAGE,
        "command": ["tensorboard", "--logdir=%s" % logdir, "--bind_all", "--port=%d" % port] + list(params.get("extra_args") or []),
        "env": env,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/", "port": port}, "initialDelaySeconds": 5, "periodSeconds": 10},
        "resources": params.get("resources") or {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
        "securityContext": {"runAsUser": 1000, "runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": mounts,
    }
    if params.get("storage_secret"):
        # Object-storage credentials (AWS_ACCESS_KEY_ID, ... or GOOGLE_APPLICATION_CREDENTIALS) come from a Secret.
        container["envFrom"] = [{"secretRef": {"name": params["storage_secret"]}}]
    if params.get("image_pull_policy"):
        container["imagePullPolicy"] = params["image_pull_policy"]
    pod_labels = _labels(name, "tensorboard")
    istio = params.get("istio") or {}
    if istio.get("enabled"):
        pod_labels["sidecar.istio.io/inject"] = "true"
    pod_spec = {"containers": [container], "volumes": volumes, "automountServiceAccountToken": False}
    if params.get("node_selector"):
        pod_spec["nodeSelector"] = params["node_selector"]
    if params.get("image_pull_secrets"):
        pod_spec["imagePullSecrets"] = [{"name": n} for n in params["image_pull_secrets"]]
    selector = _selector(name, "tensorboard")
    objects = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(params, "tensorboard"),
            "spec": {
                "replicas": params.get("replicas") or 1,
                "selector": {"matchLabels": selector},
                "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(params, "tensorboard"),
            "spec": {
                "type": params.get("service_type") or "ClusterIP",
                "selector": selector,
                # The http- prefix tells Istio the protocol.
                "ports": [{"name": "http-tensorboard", "port": port, "targetPort": "http", "protocol": "TCP"}],
            },
        },
    ]
    if istio.get("enabled"):
        rule = {"ports": [str(port)], "methods": ["GET", "POST"]}
        if istio.get("allow_principals"):
            rule["principals"] = istio["allow_principals"]
        if istio.get("allow_namespaces"):
            rule["namespaces"] = istio["allow_namespaces"]
        if istio.get("allow_request_principals"):
            rule["request_principals"] = istio["allow_request_principals"]
        if not any(k in rule for k in ("principals", "namespaces", "request_principals")):
            raise InputError("option istio: give allow_principals, allow_namespaces or allow_request_principals (who may open TensorBoard)")
        policy = {
            "name": name,
            "namespace": params["namespace"],
            "selector": selector,
            "peer_authentication": {"mode": istio.get("mtls_mode") or "STRICT"},
            "authorization": {"action": "ALLOW", "rules": [rule]},
        }
        objects += build_istio_policies(policy)
    return objects
