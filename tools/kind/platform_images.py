# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The platform's images, made here and pushed to the offline kind cluster's local registry under
their upstream paths, so that the charts and modules pull them with `aiinfra_image_registry` set to
the registry (the air-gapped path users take with a mirror):

    platform_images.py [--registry 127.0.0.1:5001] [--work DIR]

- the operators' controllers, the binaries tools/gobuild/operators.sh builds from the Go module
  proxy (KServe, JobSet, Kubeflow Trainer, Kueue, Fluid's dataset controller), each alone in its
  image at the path the chart's Deployment runs;
- for what cannot be built here (the GPU Operator and NFD, KServe's storage initializer and model
  server, kube-rbac-proxy, Fluid's webhook, CSI plugin and other controllers, TensorBoard, the
  Trainer's runtime installer), one stand-in program of our own (tools/kind/standin) under each
  upstream name: it answers every probe and serves nothing else, or exits 0 where the upstream
  image runs a Job or an init container. Pods on the simulated GPU nodes pull nothing.

Each image is an OCI layout written by mkimage.py and pushed by push_image.py; the layouts are
kept in --work (default ~/.cache/aiinfra-cluster/kind/platform-images) and rebuilt only when a
binary changes.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import mkimage  # noqa: E402
import push_image  # noqa: E402

NONROOT = "65532:65532"

# image (registry-relative, as the roles name it) -> (operator, binary in its build, path in the image)
CONTROLLERS = {
    "kserve/kserve-controller:v0.20.0": ("kserve", "manager", "/manager"),
    "jobset/jobset:v0.12.0": ("jobset", "jobset", "/manager"),
    "kubeflow/trainer/trainer-controller-manager:v2.3.0": ("trainer", "trainer-controller-manager", "/manager"),
    "kueue/kueue:v0.19.2": ("kueue", "kueue", "/manager"),
    "fluidcloudnative/dataset-controller:v1.0.8-6533239": ("fluid", "dataset", "/usr/local/bin/dataset-controller"),
}

# image -> stand-in settings: the commands the charts run in it (links to the stand-in), which of
# them only run to completion (STANDIN_EXIT_WHEN: a command's name or first argument), exit for an
# image that is only ever an init container or Job, ports to serve instead of the default list.
STANDINS = {
    "nvidia/gpu-operator:v26.7.0": {"links": ["/usr/bin/gpu-operator", "/usr/bin/cleanup-gpuclusters", "/usr/bin/manage-crds"],
                                    "exit_when": "cleanup-gpuclusters,manage-crds"},
    "nfd/node-feature-discovery:v0.19.0": {"links": ["/usr/bin/nfd-master", "/usr/bin/nfd-worker", "/usr/bin/nfd-gc"], "exit_when": "-prune"},
    # A sidecar of the KServe controller, in the same network namespace: only its own port.
    "brancz/kube-rbac-proxy:v0.18.0": {"ports": "8443"},
    "kserve/storage-initializer:v0.20.0": {"exit": True},
    "kserve/sklearnserver:v0.20.0": {},
    "fluidcloudnative/fluid-webhook:v1.0.8-6533239": {"links": ["/usr/local/bin/fluid-webhook"]},
    "fluidcloudnative/application-controller:v1.0.8-6533239": {"links": ["/usr/local/bin/fluidapp-controller"]},
    "fluidcloudnative/alluxioruntime-controller:v1.0.8-6533239": {"links": ["/usr/local/bin/alluxioruntime-controller"]},
    "fluidcloudnative/fluid-csi:v1.0.8-6533239": {"links": ["/usr/local/bin/entrypoint.sh"]},
    "fluidcloudnative/csi-node-driver-registrar:v2.14.0": {},
    "fluidcloudnative/fluid-crd-upgrader:v1.0.8-6533239": {"links": ["/bin/bash"], "exit_when": "bash"},
    "alpine:3.21": {"links": ["/bin/sh"], "exit_when": "sh"},
    "tensorflow/tensorflow:2.21.0": {"links": ["/usr/local/bin/tensorboard"]},
}


def log(msg):
    sys.stderr.write("platform-images: %s\n" % msg)
    sys.stderr.flush()


def operator_binaries():
    """operator -> its build directory (tools/gobuild/operators.sh builds the ones missing from its
    cache), at the versions of tools/gobuild/versions.env (the charts' versions)."""
    names = sorted(set(operator for operator, _binary, _path in CONTROLLERS.values()))
    root = subprocess.check_output(["bash", os.path.join(ROOT, "tools", "gobuild", "operators.sh")] + names, text=True).strip()
    versions = {}
    with open(os.path.join(ROOT, "tools", "gobuild", "versions.env")) as handle:
        for line in handle:
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                versions[key] = value
    return dict((name, os.path.join(root, "%s-%s" % (name, versions["%s_VERSION" % name.upper()]))) for name in names)


def layout(work, image, build_args, inputs):
    """The image's OCI layout tar, written unless one from the same inputs exists."""
    key = hashlib.sha256(json.dumps([image, build_args, inputs], sort_keys=True).encode()).hexdigest()[:12]
    out = os.path.join(work, "%s-%s.tar" % (image.replace("/", "_").replace(":", "_"), key))
    if not os.path.exists(out):
        mkimage.build(mkimage_args(out, build_args))
    return out


def mkimage_args(out, build_args):
    parser_defaults = {"file": [], "dir": [], "link": [], "layer_tar": [], "env": [], "entrypoint": None, "cmd": None, "user": None}
    parser_defaults.update(build_args)
    parser_defaults["out"] = out
    return argparse.Namespace(**parser_defaults)


def stat_key(path):
    info = os.stat(path)
    return [path, info.st_size, int(info.st_mtime)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--registry", default="127.0.0.1:%s" % os.environ.get("AIINFRA_KIND_REGISTRY_PORT", "5001"))
    parser.add_argument("--work", default=os.path.join(os.environ.get("AIINFRA_CACHE", os.path.expanduser("~/.cache/aiinfra-cluster")),
                                                       "kind", "platform-images"))
    opts = parser.parse_args(argv)
    started = time.time()
    os.makedirs(opts.work, exist_ok=True)
    try:
        builds = operator_binaries()
        standin = subprocess.check_output(["bash", os.path.join(HERE, "standin", "build.sh")], text=True).strip()
        # The stand-in in a layer of its own: one blob under every stand-in image.
        standin_layer = os.path.join(opts.work, "standin-%s.tar" % hashlib.sha256(open(standin, "rb").read()).hexdigest()[:12])
        if not os.path.exists(standin_layer):
            mkimage.files_layer([standin + ":/standin"], standin_layer + ".tmp")
            os.replace(standin_layer + ".tmp", standin_layer)
        pushed = []
        for image, (operator, binary, path) in sorted(CONTROLLERS.items()):
            src = os.path.join(builds[operator], binary)
            args = {"ref": [image], "file": [src + ":" + path], "dir": ["/tmp"], "user": NONROOT, "entrypoint": json.dumps([path])}
            pushed.append((image, layout(opts.work, image, args, stat_key(src))))
        for image, spec in sorted(STANDINS.items()):
            env = [mkimage.DEFAULT_PATH, "STANDIN_NAME=" + image]
            if spec.get("exit"):
                env.append("STANDIN_MODE=exit")
            if spec.get("ports"):
                env.append("STANDIN_DEFAULT_PORTS=" + spec["ports"])
            if spec.get("exit_when"):
                env.append("STANDIN_EXIT_WHEN=" + spec["exit_when"])
            args = {"ref": [image], "layer_tar": [standin_layer], "link": [link + ":/standin" for link in spec.get("links", [])],
                    "dir": ["/tmp"], "env": env, "user": NONROOT, "entrypoint": json.dumps(["/standin"])}
            pushed.append((image, layout(opts.work, image, args, [standin_layer])))
        for image, archive in pushed:
            push_image.push(archive, "%s/%s" % (opts.registry, image))
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        log("FAILED: %s" % exc)
        return 1
    log("%d images (%d controllers, %d stand-ins) in %s in %.0f s"
        % (len(pushed), len(CONTROLLERS), len(STANDINS), opts.registry, time.time() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
