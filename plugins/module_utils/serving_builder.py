# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Pure builders for model serving: a KServe InferenceService, and Triton Inference Server
without KServe (Deployment + Service, optional HPA and Prometheus monitor).

Each builder takes the module's params and returns the list of manifests to apply, in the
order they are applied (deletes run in reverse). Bad input raises InputError naming the option.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.aiinfra.cluster.plugins.module_utils import dra, queueing
from ansible_collections.aiinfra.cluster.plugins.module_utils.errors import InputError
from ansible_collections.aiinfra.cluster.plugins.module_utils.quantities import check_quantity

KSERVE_API = "serving.kserve.io/v1beta1"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
# Schemes KServe's storage initializer understands, as documented for v0.20.
STORAGE_SCHEMES = ("s3://", "gs://", "pvc://", "hf://", "oci://", "https://")
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
GPU_RESOURCE = "nvidia.com/gpu"
MANAGED_BY = {"app.kubernetes.io/managed-by": "aiinfra.cluster"}

# NGC container 26.07 = Triton server 2.71.0 (the latest release confirmed in upstream-facts).
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:26.07-py3"
TRITON_PORTS = (("http", 8000), ("grpc", 8001), ("metrics", 8002))
TRITON_USER = 1000  # the triton-server user of the NGC image
TRITON_MODEL_MOUNT = "/models"
TRITON_OBJECT_SCHEMES = ("s3://", "gs://", "as://")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check_replicas(prefix, min_replicas, max_replicas, allow_zero_min=True):
    if min_replicas is not None and min_replicas < 0:
        raise InputError("option %smin_replicas is %d: a replica count cannot be negative" % (prefix, min_replicas))
    if max_replicas is not None and max_replicas < 1:
        raise InputError("option %smax_replicas is %d: it must be at least 1" % (prefix, max_replicas))
    if min_replicas is not None and max_replicas is not None and max_replicas < min_replicas:
        raise InputError("option %smax_replicas (%d) is below %smin_replicas (%d)" % (prefix, max_replicas, prefix, min_replicas))
    if min_replicas == 0 and not allow_zero_min:
        raise InputError(
            "option %smin_replicas is 0: scale to zero needs deployment_mode=Knative (Standard mode scales with an HPA, minimum 1)" % prefix
        )


def _has_userinfo(uri):
    """True when a URI carries credentials (scheme://user:secret@host)."""
    rest = uri.split("://", 1)[1] if "://" in uri else uri
    return "@" in rest.split("/", 1)[0]


def validate_storage_uri(uri, option="storage_uri"):
    if not any(uri.startswith(s) for s in STORAGE_SCHEMES):
        raise InputError(
            "option %s %r: KServe does not know this scheme; use one of %s" % (option, uri, ", ".join(STORAGE_SCHEMES))
        )
    if _has_userinfo(uri):
        raise InputError(
            "option %s carries credentials in the URI: put them in a Secret attached to the service account named by service_account" % option
        )
    if uri.startswith("pvc://") and not uri[len("pvc://"):].split("/", 1)[0]:
        raise InputError("option %s %r names no claim: use pvc://<claim>/<path>" % (option, uri))


def gpu_placement(gpu_product, node_selector, tolerations, gpus, tolerate_gpu_taint=True):
    """nodeSelector (GFD product label) and tolerations shared by the serving builders."""
    selector = dict(node_selector or {})
    if gpu_product:
        selector[GPU_PRODUCT_LABEL] = gpu_product
    tols = list(tolerations or [])
    if gpus and tolerate_gpu_taint and not any(t.get("key") == GPU_RESOURCE for t in tols):
        # GPU nodes are commonly tainted nvidia.com/gpu:NoSchedule so that only GPU pods land there.
        tols.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    return selector, tols


def container_resources(resources, gpus, gpu_resource=GPU_RESOURCE, option="resources"):
    """requests/limits from the module's resources option, GPUs as limits (requests follow)."""
    resources = resources or {}
    out = {}
    for part in ("requests", "limits"):
        values = dict((k, check_quantity(v, "%s.%s.%s" % (option, part, k))) for k, v in (resources.get(part) or {}).items())
        if values:
            out[part] = values
    if gpus is not None:
        if gpus < 0:
            raise InputError("option gpus is %d: a GPU count cannot be negative" % gpus)
        if gpus:
            out.setdefault("limits", {})[gpu_resource] = str(gpus)
    limits_gpu = (out.get("limits") or {}).get(gpu_resource)
    requests_gpu = (out.get("requests") or {}).get(gpu_resource)
    if requests_gpu is not None and limits_gpu is not None and requests_gpu != limits_gpu:
        raise InputError("option %s: %s requests (%s) and limits (%s) must be equal" % (option, gpu_resource, requests_gpu, limits_gpu))
    return out


def gpu_resources(params, gpus, use_dra):
    """The serving container's resources: nvidia.com/gpu limits with the device plugin, or under
    DRA the pod's claim (resources.claims) and no GPU resource at all."""
    gpu_resource = params.get("gpu_resource_name") or GPU_RESOURCE
    if not use_dra:
        return container_resources(params.get("resources"), gpus, gpu_resource)
    if gpu_resource != GPU_RESOURCE:
        raise InputError(
            "option gpu_resource_name=%s is a device-plugin resource; with gpu_allocation=dra the claim asks whole GPUs "
            "of DeviceClass %s: leave gpu_resource_name at %s" % (gpu_resource, dra.DEVICE_CLASS, GPU_RESOURCE)
        )
    out = container_resources(params.get("resources"), None)
    named = sorted(k for part in ("requests", "limits") for k in (out.get(part) or {}) if k.startswith("nvidia.com/"))
    if named:
        raise InputError("option resources: with gpu_allocation=dra the GPUs come from the claim; drop %s from resources" % ", ".join(named))
    out["claims"] = list(dra.CONTAINER_CLAIMS)
    return out


def gpu_claim_template(params, name, namespace, labels, gpus):
    """The ResourceClaimTemplate <name>-gpus the pods claim their GPUs from (gpu_product is the
    selector's product when gpu_selector names none)."""
    selector = dra.selector_with_product(params.get("gpu_selector"), params.get("gpu_product"))
    return dra.claim_template(name, namespace, labels, gpus, selector)


def object_metadata(name, namespace, labels=None, annotations=None):
    """metadata for an object this collection builds: always labelled as managed by it."""
    meta = {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY, **(labels or {}))}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _env_list(env):
    """env as a mapping (name -> value) or a list of EnvVar dicts."""
    if not env:
        return []
    if isinstance(env, dict):
        return [{"name": k, "value": str(v)} for k, v in sorted(env.items())]
    return list(env)


def _extra_container(spec, option):
    """Transformer / custom explainer container."""
    if not spec.get("image"):
        raise InputError("option %s.image is required" % option)
    container = {"name": "kserve-container", "image": spec["image"]}
    if spec.get("args"):
        container["args"] = list(spec["args"])
    if spec.get("env"):
        container["env"] = _env_list(spec["env"])
    res = container_resources(spec.get("resources"), None, option="%s.resources" % option)
    if res:
        container["resources"] = res
    return container


def build_inference_service(params):
    """params -> [ResourceClaimTemplate (gpu_allocation=dra)?, InferenceService]."""
    name, namespace = params["name"], params.get("namespace") or "default"
    mode = params.get("deployment_mode") or "Standard"
    fmt = params.get("model_format") or {}
    if not fmt.get("name"):
        raise InputError("option model_format.name is required (for example pytorch, onnx, triton, sklearn, huggingface)")
    storage_uri = params.get("storage_uri")
    if storage_uri:
        validate_storage_uri(storage_uri)
    _check_replicas("", params.get("min_replicas"), params.get("max_replicas"), allow_zero_min=(mode == "Knative"))
    scale_metric = params.get("scale_metric")
    if scale_metric in ("concurrency", "rps") and mode != "Knative":
        raise InputError("option scale_metric=%s needs deployment_mode=Knative; Standard mode's HPA scales on cpu or memory" % scale_metric)
    if params.get("scale_target") is not None and params["scale_target"] < 1:
        raise InputError("option scale_target must be at least 1")
    canary = params.get("canary_traffic_percent")
    if canary is not None:
        if not 0 <= canary <= 100:
            raise InputError("option canary_traffic_percent is %d: it must be between 0 and 100" % canary)
        if mode != "Knative":
            raise InputError("option canary_traffic_percent needs deployment_mode=Knative (KServe splits traffic through Knative revisions)")

    model = {"modelFormat": dict((k, str(v)) for k, v in fmt.items() if v is not None)}
    for option, field in (("runtime", "runtime"), ("runtime_version", "runtimeVersion"), ("protocol_version", "protocolVersion")):
        if params.get(option):
            model[field] = params[option]
    if storage_uri:
        model["storageUri"] = storage_uri
    if params.get("args"):
        model["args"] = list(params["args"])
    if params.get("env"):
        model["env"] = _env_list(params["env"])
    gpus = params.get("gpus") or 0
    use_dra = dra.check_allocation(params.get("gpu_allocation"), params.get("gpu_selector"), gpus, "gpus")
    resources = gpu_resources(params, gpus, use_dra)
    if resources:
        model["resources"] = resources

    predictor = {"model": model}
    for option, field in (
        ("min_replicas", "minReplicas"),
        ("max_replicas", "maxReplicas"),
        ("scale_metric", "scaleMetric"),
        ("scale_target", "scaleTarget"),
        ("canary_traffic_percent", "canaryTrafficPercent"),
        ("service_account", "serviceAccountName"),
    ):
        if params.get(option) is not None:
            predictor[field] = params[option]
    # Under DRA the claim's selector picks the product: no GFD node label.
    selector, tolerations = gpu_placement(
        None if use_dra else params.get("gpu_product"), params.get("node_selector"), params.get("tolerations"), gpus,
        params.get("tolerate_gpu_taint", True)
    )
    if selector:
        predictor["nodeSelector"] = selector
    if tolerations:
        predictor["tolerations"] = tolerations
    if use_dra:
        # KServe v0.20's predictor is a pod spec: its resourceClaims reach the predictor pods.
        predictor["resourceClaims"] = dra.pod_resource_claims(name)

    spec = {"predictor": predictor}
    if params.get("transformer"):
        spec["transformer"] = {"containers": [_extra_container(params["transformer"], "transformer")]}
    if params.get("explainer"):
        spec["explainer"] = build_explainer(params["explainer"])

    annotations = dict(params.get("annotations") or {})
    annotations[DEPLOYMENT_MODE_ANNOTATION] = mode
    # KServe copies the InferenceService's labels to the predictor's Deployment and pods, where
    # Kueue reads the queue (pod by pod, through its pod and deployment integrations).
    metadata = object_metadata(name, namespace, dict(params.get("labels") or {}, **queueing.queue_labels(params)), annotations)
    objects = [{"apiVersion": KSERVE_API, "kind": "InferenceService", "metadata": metadata, "spec": spec}]
    if use_dra:
        # Applied first, so that the predictor pods find the template they claim from.
        objects.insert(0, gpu_claim_template(params, name, namespace, metadata["labels"], gpus))
    return objects


def inference_service_ref(name, namespace, gpu_allocation=None):
    """What state=absent needs: the objects' identities only (the claim template under DRA)."""
    refs = [{"apiVersion": KSERVE_API, "kind": "InferenceService", "metadata": {"name": name, "namespace": namespace}}]
    if gpu_allocation == "dra":
        refs.insert(0, dra.claim_template_ref(name, namespace))
    return refs


def build_explainer(explainer):
    kind = explainer.get("type") or "custom"
    if kind == "alibi":
        raise InputError(
            "option explainer.type=alibi: the Alibi explainer was removed from KServe in v0.13; "
            "use explainer.type=art (Adversarial Robustness Toolbox) or explainer.type=custom with explainer.image"
        )
    if kind == "art":
        art = {"type": explainer.get("art_type") or "SquareAttack"}
        if explainer.get("config"):
            art["config"] = dict((k, str(v)) for k, v in explainer["config"].items())
        for option, field in (("image", "image"), ("runtime_version", "runtimeVersion"), ("storage_uri", "storageUri")):
            if explainer.get(option):
                art[field] = explainer[option]
        if explainer.get("storage_uri"):
            validate_storage_uri(explainer["storage_uri"], "explainer.storage_uri")
        return {"art": art}
    if kind != "custom":
        raise InputError("option explainer.type=%s is unknown: use art or custom" % kind)
    return {"containers": [_extra_container(explainer, "explainer")]}


def inference_service_summary(obj):
    """url, address and conditions from an InferenceService as the operator reports them."""
    status = (obj or {}).get("status") or {}
    predictor = (status.get("components") or {}).get("predictor") or {}
    return {
        "url": status.get("url"),
        "address": (status.get("address") or {}).get("url"),
        "predictor_url": predictor.get("url"),
        "conditions": status.get("conditions") or [],
        "ready": any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []),
    }


# Triton ---------------------------------------------------------------------------------
def triton_labels(name):
    return {"app.kubernetes.io/name": "triton-inference-server", "app.kubernetes.io/instance": name}


def _parse_repository(uri):
    """(volume or None, --model-repository value)."""
    if uri.startswith("pvc://"):
        claim, _sep, sub_path = uri[len("pvc://"):].partition("/")
        if not claim or not _DNS_LABEL.match(claim.split(".")[0]):
            raise InputError("option model_repository %r names no valid claim: use pvc://<claim>/<path>" % uri)
        return {"claim": claim, "sub_path": sub_path.strip("/")}, TRITON_MODEL_MOUNT + ("/" + sub_path.strip("/") if sub_path.strip("/") else "")
    if any(uri.startswith(s) for s in TRITON_OBJECT_SCHEMES):
        if _has_userinfo(uri):
            raise InputError("option model_repository carries credentials in the URI: put them in a Secret and name it in storage_secret")
        return None, uri
    raise InputError("option model_repository %r: use pvc://<claim>/<path>, s3://, gs:// or as://" % uri)


def _http_probe(path, initial, period, failure_threshold):
    probe = {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "failureThreshold": failure_threshold}
    if initial:
        # The server drops a zero delay; sending one would make every run look like a change.
        probe["initialDelaySeconds"] = initial
    return probe


def triton_args(params, repository):
    args = ["tritonserver", "--model-repository=%s" % repository]
    mode = params.get("model_control_mode") or "none"
    args.append("--model-control-mode=%s" % mode)
    if mode == "poll":
        args.append("--repository-poll-secs=%d" % (params.get("repository_poll_secs") or 30))
    elif params.get("repository_poll_secs"):
        raise InputError("option repository_poll_secs needs model_control_mode=poll")
    if params.get("load_models"):
        if mode != "explicit":
            raise InputError("option load_models needs model_control_mode=explicit")
        args.extend("--load-model=%s" % m for m in params["load_models"])
    args.extend(["--http-port=8000", "--grpc-port=8001", "--metrics-port=8002"])
    if params.get("strict_readiness") is not None:
        args.append("--strict-readiness=%s" % str(params["strict_readiness"]).lower())
    args.extend(params.get("extra_args") or [])
    return args


def build_triton_server(params):
    """params -> [ResourceClaimTemplate (gpu_allocation=dra)?, Deployment, Service, HorizontalPodAutoscaler?,
    ServiceMonitor|PodMonitor?]."""
    name, namespace = params["name"], params.get("namespace") or "default"
    labels = triton_labels(name)
    replicas = params.get("replicas", 1)
    if replicas is not None and replicas < 0:
        raise InputError("option replicas is %d: a replica count cannot be negative" % replicas)
    volume, repository = _parse_repository(params["model_repository"])
    gpus = params.get("gpus", 1)
    use_dra = dra.check_allocation(params.get("gpu_allocation"), params.get("gpu_selector"), gpus, "gpus")
    resources = gpu_resources(params, gpus, use_dra)

    container = {
        "name": "triton",
        "image": params.get("image") or TRITON_IMAGE,
        "args": triton_args(params, repository),
        "ports": [{"name": port_name, "containerPort": port, "protocol": "TCP"} for port_name, port in TRITON_PORTS],
        "startupProbe": _http_probe("/v2/health/ready", 0, 10, params.get("startup_failure_threshold") or 30),
        "readinessProbe": _http_probe("/v2/health/ready", 5, 5, 3),
        "livenessProbe": _http_probe("/v2/health/live", 15, 10, 3),
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if params.get("image_pull_policy"):
        container["imagePullPolicy"] = params["image_pull_policy"]
    if resources:
        container["resources"] = resources
    env = _env_list(params.get("env"))
    if env:
        container["env"] = env
    if params.get("storage_secret"):
        if volume is not None:
            raise InputError("option storage_secret is for object storage; a pvc:// model_repository needs no credentials")
        # Every key of the Secret becomes an environment variable (AWS_ACCESS_KEY_ID, ...).
        container["envFrom"] = [{"secretRef": {"name": params["storage_secret"]}}]
    shm = check_quantity(params.get("shm_size") or "1Gi", "shm_size")
    volumes = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm}}]
    if volume is not None:
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": volume["claim"], "readOnly": True}})
        container["volumeMounts"].append({"name": "models", "mountPath": TRITON_MODEL_MOUNT, "readOnly": True})

    # Under DRA the claim's selector picks the product: no GFD node label.
    selector, tolerations = gpu_placement(
        None if use_dra else params.get("gpu_product"), params.get("node_selector"), params.get("tolerations"), gpus,
        params.get("tolerate_gpu_taint", True)
    )
    pod_spec = {
        "containers": [container],
        "volumes": volumes,
        "securityContext": {"runAsNonRoot": True, "runAsUser": TRITON_USER, "runAsGroup": TRITON_USER, "fsGroup": TRITON_USER},
    }
    if selector:
        pod_spec["nodeSelector"] = selector
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if params.get("service_account"):
        pod_spec["serviceAccountName"] = params["service_account"]
    if params.get("image_pull_secrets"):
        pod_spec["imagePullSecrets"] = [{"name": s} for s in params["image_pull_secrets"]]
    if use_dra:
        pod_spec["resourceClaims"] = dra.pod_resource_claims(name)

    # Kueue admits each pod of a queued Deployment on its own: the queue goes on the pods too (its
    # deployment webhook would copy it there; said here, it works with the pod integration alone).
    queued_labels = dict(labels, **queueing.queue_labels(params))
    deployment_spec = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": queued_labels}, "spec": pod_spec},
    }
    autoscaling = params.get("autoscaling") or {}
    if not autoscaling.get("enabled"):
        # With an HPA the replica count belongs to the HPA; applying it here would fight it.
        deployment_spec["replicas"] = replicas
    objects = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": object_metadata(name, namespace, queued_labels), "spec": deployment_spec},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": object_metadata(name, namespace, labels),
            "spec": {
                "type": params.get("service_type") or "ClusterIP",
                "selector": labels,
                "ports": [{"name": port_name, "port": port, "targetPort": port_name, "protocol": "TCP"} for port_name, port in TRITON_PORTS],
            },
        },
    ]
    if autoscaling.get("enabled"):
        objects.append(build_triton_hpa(name, namespace, labels, autoscaling))
    monitor = params.get("monitoring") or "none"
    if monitor != "none":
        objects.append(build_triton_monitor(name, namespace, labels, monitor, params.get("metrics_interval") or "30s"))
    if use_dra:
        # Applied first, so that the Deployment's pods find the template they claim from.
        objects.insert(0, gpu_claim_template(params, name, namespace, dict(MANAGED_BY, **labels), gpus))
    return objects


def build_triton_hpa(name, namespace, labels, autoscaling):
    min_r, max_r = autoscaling.get("min_replicas", 1), autoscaling.get("max_replicas")
    if max_r is None:
        raise InputError("option autoscaling.max_replicas is required when autoscaling.enabled is true")
    _check_replicas("autoscaling.", min_r, max_r, allow_zero_min=False)
    target = autoscaling.get("target_cpu_utilization")
    target = 80 if target is None else target
    if not 1 <= target <= 100:
        raise InputError("option autoscaling.target_cpu_utilization must be between 1 and 100")
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_metadata(name, namespace, labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min_r,
            "maxReplicas": max_r,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}],
        },
    }


def build_triton_monitor(name, namespace, labels, kind, interval):
    endpoint = {"port": "metrics", "path": "/metrics", "interval": interval}
    if kind == "service_monitor":
        return {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "ServiceMonitor",
            "metadata": object_metadata(name, namespace, labels),
            "spec": {"selector": {"matchLabels": labels}, "endpoints": [endpoint]},
        }
    if kind == "pod_monitor":
        return {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": object_metadata(name, namespace, labels),
            "spec": {"selector": {"matchLabels": labels}, "podMetricsEndpoints": [endpoint]},
        }
    raise InputError("option monitoring=%s is unknown: use none, service_monitor or pod_monitor" % kind)


def triton_endpoints(name, namespace, service=None, slices=None):
    """In-cluster URLs of the Service and the ready pod addresses behind it."""
    host = "%s.%s.svc" % (name, namespace)
    ready = []
    for item in slices or []:
        for ep in item.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready", True):
                ready.extend(ep.get("addresses") or [])
    return {
        "http": "http://%s:8000" % host,
        "grpc": "%s:8001" % host,
        "metrics": "http://%s:8002/metrics" % host,
        "cluster_ip": ((service or {}).get("spec") or {}).get("clusterIP"),
        "ready_addresses": sorted(ready),
    }
