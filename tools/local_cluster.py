#!/usr/bin/env python3
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
KWOK on 127.0.0.1, with simulated GPU nodes, and beside it the operators' own controllers (JobSet,
KServe, Kubeflow Trainer; Fluid on request) as host processes. Binaries come from
tools/gobuild/build.sh and tools/gobuild/operators.sh (Go module proxy, cached by version outside
the repository).

    local_cluster.py up [--gpu-nodes 4 --gpus-per-node 8 --gpu-product ... --cpu-nodes 1]
                        [--operators jobset,kserve,trainer[,fluid] | --no-operators]
    local_cluster.py status | env | down

A second `up` with the cluster healthy changes nothing (it restarts a controller that died).
`down` stops every process `up` started (by PID, checked against its command line) and removes
the state directory. The controllers' webhook servers are registered by the charts, through the
post-renderer inventories/files/helm-local-webhooks, which reads webhooks.json in the state
directory.
"""

import argparse
import base64
import http.client
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_STATE = os.environ.get("AIINFRA_LOCAL_CLUSTER_DIR", os.path.join(ROOT, ".local-cluster"))
DEFAULT_CRDS = os.path.join(os.path.dirname(ROOT), "shared", "crds")
DEFAULT_CHARTS = os.environ.get("AIINFRA_CHARTS_DIR", os.path.join(os.path.dirname(ROOT), "shared", "charts"))
FIELD_MANAGER = "aiinfra-local-cluster"
# The operators' controllers the launcher can run, in start order (the Trainer needs JobSet), and
# the default set. Fluid runs on request: its Alluxio runtime controller execs into the cache
# pods, which simulated pods cannot answer, so a Dataset never binds and a deleted runtime keeps
# its finalizer (the controller's shutdown execs too).
OPERATORS = ("jobset", "kserve", "trainer", "kueue", "fluid")
DEFAULT_OPERATORS = "jobset,kserve,trainer,kueue"
# Webhook Service names the charts render with the roles' release names -> the controller that
# serves them. The post-renderer points these at the controller's loopback webhook port.
WEBHOOK_SERVICES = {
    "kserve": ["kserve-webhook-server-service"],
    "jobset": ["jobset-webhook-service"],
    "trainer": ["kubeflow-trainer-controller-manager"],
    "kueue": ["kueue-webhook-service"],
}
# Where the roles install each chart (release, namespace): objects the launcher creates before
# the chart is installed carry that release's Helm ownership, so `helm install` adopts them.
KSERVE_RELEASE = ("kserve-resources", "kserve")
KUEUE_RELEASE = ("kueue", "kueue-system")
# Kueue's CRDs (the chart's templates/crd), and those its webhook converts (its rotator's list).
KUEUE_CRDS = ("admissionchecks", "clusterqueues", "cohorts", "localqueues", "multikueueclusters", "multikueueconfigs",
              "provisioningrequestconfigs", "resourceflavors", "topologies", "workloadpriorityclasses", "workloads")
KUEUE_CONVERTED_CRDS = ("localqueues", "clusterqueues", "workloads", "cohorts", "multikueueclusters")
# The gpu_scheduling role's defaults: the launcher configures Kueue with the same Job kinds,
# namespace selector and DRA device classes, so the host process runs what the chart would run.
GPU_SCHEDULING_DEFAULTS = os.path.join(ROOT, "roles", "gpu_scheduling", "defaults", "main.yml")
# GPU Feature Discovery labels per product: (gpu.memory MiB, gpu.family, compute major, minor)
GPU_PRODUCTS = {
    "NVIDIA-H100-80GB-HBM3": (81559, "hopper", 9, 0),
    "NVIDIA-H200": (143771, "hopper", 9, 0),
    "NVIDIA-A100-SXM4-80GB": (81920, "ampere", 8, 0),
    "NVIDIA-A100-SXM4-40GB": (40960, "ampere", 8, 0),
    "NVIDIA-L40S": (46068, "ada-lovelace", 8, 9),
    "Tesla-T4": (15360, "turing", 7, 5),
}


# The simulated fabric: GPU node i sits in rack i // nodes-per-rack, rack r in block
# r // racks-per-block. A rack is one NVLink domain (nvidia.com/gpu.clique, as GFD labels the nodes
# of an NVL72-class rack), and holds one GPU product.
TOPOLOGY_BLOCK_LABEL = "aiinfra.cluster/topology-block"
TOPOLOGY_RACK_LABEL = "aiinfra.cluster/topology-rack"
# What NVIDIA's DRA kubelet plugin publishes for a full GPU (see ../shared/charts/SOURCES.md):
# driver gpu.nvidia.com, pool = node name, one device gpu-<minor> per GPU. NVML's product name has
# spaces where GFD's label has dashes.
DRA_DRIVER = "gpu.nvidia.com"
DRA_DRIVER_VERSION = "580.95.5"
DRA_CUDA_DRIVER_VERSION = "13.0.0"


def kueue_role_defaults():
    """The gpu_scheduling role's defaults (plain values for the keys the launcher reads)."""
    import yaml  # only needed here; the launcher runs from the project venv

    with open(GPU_SCHEDULING_DEFAULTS) as handle:
        return yaml.safe_load(handle)


def kwok_args(bin_dir, kubeconfig, cidr, node_ip):
    """KWOK's arguments: manage only the nodes annotated kwok.x-k8s.io/node=fake, with KWOK's stages
    from the build cache where tools/kwok-stages has none of the same name."""
    stages = dict((f, os.path.join(bin_dir, "kwok-stages", f)) for f in os.listdir(os.path.join(bin_dir, "kwok-stages")))
    local_stages = os.path.join(ROOT, "tools", "kwok-stages")
    stages.update((f, os.path.join(local_stages, f)) for f in os.listdir(local_stages) if f.endswith(".yaml"))
    return ["--config=" + stages[f] for f in sorted(stages)] + [
        "--kubeconfig=" + kubeconfig,
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--manage-nodes-with-label-selector=",
        "--manage-single-node=",
        "--cidr=" + cidr,
        "--node-ip=" + node_ip,
        "--node-lease-duration-seconds=40",
    ]


def rack_uuid(rack):
    """The NVLink domain's cluster UUID in GFD's gpu.clique label (<clusterUUID>.<cliqueId>)."""
    return "00000000-0000-4000-8000-%012d" % rack


def log(msg):
    print("local-cluster: %s" % msg, file=sys.stderr, flush=True)


PORT_RESERVATIONS = os.path.join(tempfile.gettempdir(), "aiinfra-local-cluster-ports")


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A free loopback port for a server this launcher starts a moment later.

    Chosen below the kernel's ephemeral range, so no outgoing connection can take it before the
    server binds, and reserved with an exclusive file, so two launchers running at once (`make
    test` runs the node tier's beside the main one) never pick the same port. Reservations older
    than a day are reused."""
    os.makedirs(PORT_RESERVATIONS, exist_ok=True)
    low = min(_ephemeral_low(), 65000)
    rng = random.SystemRandom()
    for _attempt in range(500):
        port = rng.randint(10000, low - 1)
        marker = os.path.join(PORT_RESERVATIONS, str(port))
        try:
            if time.time() - os.path.getmtime(marker) > 86400:
                os.remove(marker)
        except OSError:
            pass
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        except FileExistsError:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use by something else: keep the marker, try another
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd, **kwargs):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


class Api:
    """Minimal keep-alive client for the launcher (the collection's own client needs the
    collection on a collections path; the launcher must run before that exists)."""

    def __init__(self, port, pki):
        self.port = port
        ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
        ctx.load_cert_chain(os.path.join(pki, "admin.crt"), os.path.join(pki, "admin.key"))
        self.ctx = ctx
        self.conn = None

    def request(self, method, path, body=None, content_type="application/json"):
        for attempt in range(5):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=60)
                headers = {"Accept": "application/json"}
                data = None
                if body is not None:
                    data = body if isinstance(body, bytes) else json.dumps(body).encode()
                    headers["Content-Type"] = content_type
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                if resp.status in (429, 500, 503) and attempt < 4:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                try:
                    return resp.status, json.loads(raw) if raw else None
                except ValueError:
                    return resp.status, raw.decode("utf-8", "replace")
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt == 4:
                    raise
                time.sleep(0.5)
        raise RuntimeError("unreachable")

    def ok(self, method, path, body=None, content_type="application/json", accept=(200, 201)):
        status, data = self.request(method, path, body, content_type)
        if status not in accept:
            raise RuntimeError("%s %s -> %s: %s" % (method, path, status, data))
        return data


class LocalCluster:
    def __init__(self, state_dir):
        self.state_dir = os.path.abspath(state_dir)
        self.pki = os.path.join(self.state_dir, "pki")
        self.logs = os.path.join(self.state_dir, "logs")
        self.state_file = os.path.join(self.state_dir, "state.json")
        self.kubeconfig = os.path.join(self.state_dir, "kubeconfig")
        # Webhook ports and CA of the running controllers, read by the helm post-renderer.
        self.webhooks_file = os.path.join(self.state_dir, "webhooks.json")

    # State ------------------------------------------------------------------------------
    def load_state(self):
        if not os.path.exists(self.state_file):
            return None
        with open(self.state_file) as handle:
            return json.load(handle)

    def save_state(self, state):
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(state, handle, indent=2)
        os.replace(tmp, self.state_file)

    @staticmethod
    def pid_alive(proc):
        """True when the PID still runs the binary we started (PIDs can be reused)."""
        try:
            with open("/proc/%d/cmdline" % proc["pid"], "rb") as handle:
                argv0 = handle.read().split(b"\0")[0].decode()
        except OSError:
            return False
        return argv0 == proc["binary"]

    def healthy(self, state):
        """The control plane answers (operators are checked, and restarted, by ensure_operators)."""
        if not state or not all(self.pid_alive(p) for p in state["processes"] if not p.get("operator")):
            return False
        try:
            status = Api(state["ports"]["apiserver"], self.pki).request("GET", "/readyz")[0]
        except (OSError, ssl.SSLError):
            return False
        return status == 200

    # Building blocks --------------------------------------------------------------------
    def build_binaries(self):
        script = os.path.join(ROOT, "tools", "gobuild", "build.sh")
        started = time.time()
        out = subprocess.run(["bash", script], check=True, stdout=subprocess.PIPE, stderr=None)
        bin_dir = out.stdout.decode().strip().splitlines()[-1]
        log("binaries ready in %s (%.1fs)" % (bin_dir, time.time() - started))
        return bin_dir

    def make_pki(self):
        os.makedirs(self.pki, exist_ok=True)

        def p(name):
            return os.path.join(self.pki, name)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run(["openssl", "req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "3650", "-subj", "/CN=aiinfra-local-ca"])

        def leaf(name, subj, ext=None):
            run(["openssl", "req", *ec, "-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj", subj])
            cmd = [
                "openssl", "x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"), "-CAcreateserial",
                "-out", p(name + ".crt"), "-days", "3650",
            ]
            if ext:
                with open(p(name + ".ext"), "w") as handle:
                    handle.write(ext)
                cmd += ["-extfile", p(name + ".ext")]
            run(cmd)

        leaf(
            "apiserver",
            "/CN=kube-apiserver",
            "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n"
            "extendedKeyUsage=serverAuth\n",
        )
        leaf("admin", "/O=system:masters/CN=aiinfra-admin", "extendedKeyUsage=clientAuth\n")
        run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", p("sa.key")])
        run(["openssl", "ec", "-in", p("sa.key"), "-pubout", "-out", p("sa.pub")])

    def write_kubeconfig(self, port):
        def b64(name):
            with open(os.path.join(self.pki, name), "rb") as handle:
                return base64.b64encode(handle.read()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "aiinfra-local", "cluster": {"server": "https://127.0.0.1:%d" % port, "certificate-authority-data": b64("ca.crt")}}],
            "users": [{"name": "aiinfra-admin", "user": {"client-certificate-data": b64("admin.crt"), "client-key-data": b64("admin.key")}}],
            "contexts": [{"name": "aiinfra-local", "context": {"cluster": "aiinfra-local", "user": "aiinfra-admin"}}],
            "current-context": "aiinfra-local",
        }
        with open(self.kubeconfig, "w") as handle:
            json.dump(config, handle, indent=2)  # JSON is valid YAML for every kubeconfig reader
        os.chmod(self.kubeconfig, 0o600)

    def start(self, state, name, binary, args, env=None, operator=False):
        os.makedirs(self.logs, exist_ok=True)
        log_path = os.path.join(self.logs, name + ".log")
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                [binary] + args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.state_dir,
                env=env or component_env(),
            )
        entry = {"name": name, "pid": proc.pid, "binary": binary, "log": log_path}
        if operator:
            entry["operator"] = True
        state["processes"].append(entry)
        self.save_state(state)
        return proc

    def wait_until(self, what, check, timeout, proc=None, name=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("%s exited with %s; log tail:\n%s" % (what, proc.returncode, self.log_tail(name)))
            try:
                if check():
                    return
            except (OSError, ssl.SSLError, http.client.HTTPException, RuntimeError):
                pass
            time.sleep(0.3)
        raise RuntimeError("%s not ready after %ds; log tail:\n%s" % (what, timeout, self.log_tail(name) if name else ""))

    def log_tail(self, name, lines=25):
        path = os.path.join(self.logs, "%s.log" % name)
        if not os.path.exists(path):
            return ""
        with open(path, "rb") as handle:
            return b"\n".join(handle.read().splitlines()[-lines:]).decode("utf-8", "replace")

    # Nodes and CRDs ---------------------------------------------------------------------
    @staticmethod
    def node_manifest(name, gpus, product, taint_gpu, index=0, topology=(2, 2)):
        labels = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
            "aiinfra.cluster/simulated": "true",
        }
        capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"}
        taints = []
        if gpus:
            memory, family, major, minor = GPU_PRODUCTS.get(product, (81920, "unknown", 0, 0))
            rack = index // topology[0]
            labels.update(
                {
                    "nvidia.com/gpu.present": "true",
                    "nvidia.com/gpu.product": product,
                    "nvidia.com/gpu.count": str(gpus),
                    "nvidia.com/gpu.memory": str(memory),
                    "nvidia.com/gpu.family": family,
                    "nvidia.com/gpu.compute.major": str(major),
                    "nvidia.com/gpu.compute.minor": str(minor),
                    "nvidia.com/mig.capable": "false",
                    "nvidia.com/gpu.clique": "%s.0" % rack_uuid(rack),
                    "feature.node.kubernetes.io/pci-10de.present": "true",
                    TOPOLOGY_BLOCK_LABEL: "block-%d" % (rack // topology[1]),
                    TOPOLOGY_RACK_LABEL: "rack-%d" % rack,
                }
            )
            capacity.update({"cpu": "192", "memory": "2Ti", "nvidia.com/gpu": str(gpus)})
            if taint_gpu:
                taints.append({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"})
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"taints": taints} if taints else {},
            "status": {"capacity": capacity, "allocatable": dict(capacity), "phase": "Running"},
        }
        return node

    @staticmethod
    def resource_slice_manifest(node, gpus, product, index):
        """The ResourceSlice NVIDIA's DRA kubelet plugin would publish for this node's GPUs."""
        memory, family, major, minor = GPU_PRODUCTS.get(product, (81920, "unknown", 0, 0))
        devices = []
        for minor_number in range(gpus):
            devices.append({
                "name": "gpu-%d" % minor_number,
                "attributes": {
                    "type": {"string": "gpu"},
                    "uuid": {"string": "GPU-%08x-0000-4000-8000-%012x" % (index, minor_number)},
                    "productName": {"string": product.replace("-", " ")},
                    "brand": {"string": "Nvidia"},
                    "architecture": {"string": family.replace("-", " ").title()},
                    "cudaComputeCapability": {"version": "%d.%d.0" % (major, minor)},
                    "driverVersion": {"version": DRA_DRIVER_VERSION},
                    "cudaDriverVersion": {"version": DRA_CUDA_DRIVER_VERSION},
                    "resource.kubernetes.io/pciBusID": {"string": "0000:%02x:00.0" % (0x18 + 8 * minor_number)},
                },
                "capacity": {"memory": {"value": "%dMi" % memory}},
            })
        return {
            "apiVersion": "resource.k8s.io/v1",
            "kind": "ResourceSlice",
            "metadata": {"name": "%s-%s" % (node, DRA_DRIVER), "labels": {"aiinfra.cluster/simulated": "true"}},
            "spec": {"driver": DRA_DRIVER, "nodeName": node, "pool": {"name": node, "generation": 0, "resourceSliceCount": 1},
                     "devices": devices},
        }

    def create_nodes(self, api, opts):
        products = [p for p in opts.gpu_product.split(",") if p]
        topology = (max(opts.nodes_per_rack, 1), max(opts.racks_per_block, 1))
        wanted = [("%s-%d" % (opts.gpu_node_prefix, i), opts.gpus_per_node, products[(i // topology[0]) % len(products)], i)
                  for i in range(opts.gpu_nodes)]
        wanted += [("cpu-node-%d" % i, 0, None, i) for i in range(opts.cpu_nodes)]
        existing = set(n["metadata"]["name"] for n in (api.ok("GET", "/api/v1/nodes").get("items") or []))
        slices = set(s["metadata"]["name"] for s in (api.ok("GET", "/apis/resource.k8s.io/v1/resourceslices").get("items") or []))
        created = 0
        for name, gpus, product, index in wanted:
            if name not in existing:
                api.ok("POST", "/api/v1/nodes", self.node_manifest(name, gpus, product, opts.taint_gpu_nodes, index, topology))
                created += 1
            if gpus and opts.dra_slices and "%s-%s" % (name, DRA_DRIVER) not in slices:
                api.ok("POST", "/apis/resource.k8s.io/v1/resourceslices", self.resource_slice_manifest(name, gpus, product, index))
        log("%d nodes (%d created): %d GPU nodes x %d %s (%d per rack, %d racks per block%s), %d CPU-only"
            % (len(wanted), created, opts.gpu_nodes, opts.gpus_per_node, opts.gpu_product, topology[0], topology[1],
               ", DRA ResourceSlices" if opts.dra_slices else "", opts.cpu_nodes))
        return [item[0] for item in wanted]

    def install_crds(self, api, crds_dir):
        import yaml  # only needed here; the launcher runs from the project venv

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        docs = []
        for fname in sorted(os.listdir(crds_dir)):
            if not fname.endswith((".yaml", ".yml")):
                continue
            with open(os.path.join(crds_dir, fname)) as handle:
                docs += [d for d in yaml.load_all(handle, Loader=loader) if d and d.get("kind") == "CustomResourceDefinition"]
        names = self.apply_crds(api, docs)
        log("%d CRDs from %s established" % (len(names), crds_dir))
        return names

    @staticmethod
    def apply_crds(api, docs):
        """Server-side apply of CRDs; returns their names once all are Established."""
        names = []
        for doc in docs:
            name = doc["metadata"]["name"]
            api.ok(
                "PATCH",
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/%s?fieldManager=%s&force=true" % (name, FIELD_MANAGER),
                doc,
                content_type="application/apply-patch+yaml",
            )
            names.append(name)
        deadline = time.time() + 120
        pending = set(names)
        while pending and time.time() < deadline:
            listing = api.ok("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
            for crd in listing.get("items") or []:
                conds = dict((c["type"], c["status"]) for c in (crd.get("status") or {}).get("conditions") or [])
                if conds.get("Established") == "True":
                    pending.discard(crd["metadata"]["name"])
            if pending:
                time.sleep(0.5)
        if pending:
            raise RuntimeError("CRDs not established after 120s: %s" % ", ".join(sorted(pending)))
        return names

    # Operators' controllers -----------------------------------------------------------
    @staticmethod
    def operator_versions():
        versions = {}
        with open(os.path.join(ROOT, "tools", "gobuild", "versions.env")) as handle:
            for line in handle:
                if "=" in line and not line.lstrip().startswith("#"):
                    key, value = line.strip().split("=", 1)
                    versions[key] = value
        return versions

    def build_operators(self, names):
        """Builds the named controllers when missing; returns {name: directory of its binaries}."""
        started = time.time()
        script = os.path.join(ROOT, "tools", "gobuild", "operators.sh")
        out = subprocess.run(["bash", script] + list(names), check=True, stdout=subprocess.PIPE, stderr=None)
        root = out.stdout.decode().strip().splitlines()[-1]
        versions = self.operator_versions()
        dirs = dict((name, os.path.join(root, "%s-%s" % (name, versions[name.upper() + "_VERSION"]))) for name in names)
        log("operator binaries ready in %s (%.1fs)" % (root, time.time() - started))
        return dirs

    def make_webhook_pki(self):
        """A CA of its own for the controllers' webhook servers (its certificate is the caBundle
        the post-renderer writes into the webhook configurations) and one serving certificate for
        127.0.0.1, shared by every webhook server."""
        if os.path.exists(os.path.join(self.pki, "webhook.crt")):
            return

        def p(name):
            return os.path.join(self.pki, name)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run(["openssl", "req", "-x509", *ec, "-keyout", p("webhook-ca.key"), "-out", p("webhook-ca.crt"), "-days", "3650",
             "-subj", "/CN=aiinfra-local-webhook-ca"])
        run(["openssl", "req", *ec, "-keyout", p("webhook.key"), "-out", p("webhook.csr"), "-subj", "/CN=127.0.0.1"])
        with open(p("webhook.ext"), "w") as handle:
            handle.write("subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n")
        run([
            "openssl", "x509", "-req", "-in", p("webhook.csr"), "-CA", p("webhook-ca.crt"), "-CAkey", p("webhook-ca.key"), "-CAcreateserial",
            "-out", p("webhook.crt"), "-days", "3650", "-extfile", p("webhook.ext"),
        ])

    def make_kueue_pki(self):
        """Kueue's rotator (cert-controller) keeps the pair in its Secret only when its CA is valid
        for the DNS name `kueue-ca` and the serving certificate for <webhook service>.<namespace>.svc;
        otherwise it makes a pair of its own that the API server, calling 127.0.0.1, cannot verify.
        So Kueue gets a CA of its own (its key goes into the Secret, as the rotator's would) and a
        serving certificate for both names."""
        if os.path.exists(os.path.join(self.pki, "kueue.crt")):
            return

        def p(name):
            return os.path.join(self.pki, name)

        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        # The rotator parses the CA key as PKCS#1 RSA only.
        run(["openssl", "genrsa", "-traditional", "-out", p("kueue-ca.key"), "2048"])
        run(["openssl", "req", "-x509", "-key", p("kueue-ca.key"), "-out", p("kueue-ca.crt"), "-days", "3650", "-subj", "/CN=kueue-ca",
             "-addext", "subjectAltName=DNS:kueue-ca", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        run(["openssl", "req", *ec, "-keyout", p("kueue.key"), "-out", p("kueue.csr"), "-subj", "/CN=kueue-webhook-service"])
        with open(p("kueue.ext"), "w") as handle:
            handle.write("subjectAltName=DNS:%s-webhook-service.%s.svc,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" % KUEUE_RELEASE)
        run(["openssl", "x509", "-req", "-in", p("kueue.csr"), "-CA", p("kueue-ca.crt"), "-CAkey", p("kueue-ca.key"), "-CAcreateserial",
             "-out", p("kueue.crt"), "-days", "3650", "-extfile", p("kueue.ext")])

    def ensure_kueue_certificates(self, api, namespace, cert_config, cert_dir):
        """The webhook Secret Kueue's rotator reads (owned by the chart's release, which adopts it),
        and the same pair in the certificate directory the webhook server reads."""
        self.make_kueue_pki()
        files = {"ca.crt": "kueue-ca.crt", "ca.key": "kueue-ca.key", "tls.crt": "kueue.crt", "tls.key": "kueue.key"}
        data = {}
        for key, name in files.items():
            with open(os.path.join(self.pki, name), "rb") as handle:
                data[key] = base64.b64encode(handle.read()).decode()
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": cert_config["webhookSecretName"], "namespace": namespace}, "data": data}
        self.ensure_helm_owned(api, secret, *KUEUE_RELEASE)
        # An existing Secret (a restarted controller, or the chart's empty one) gets this pair too.
        api.ok("PATCH", "/api/v1/namespaces/%s/secrets/%s" % (namespace, cert_config["webhookSecretName"]), {"data": data},
               content_type="application/merge-patch+json", accept=(200,))
        for key in ("tls.crt", "tls.key"):
            shutil.copyfile(os.path.join(self.pki, files[key]), os.path.join(cert_dir, key))

    def ensure_kueue_crd_conversion(self, state, api, webhook_port):
        """The chart's Kueue CRDs convert v1beta1 <-> v1beta2 through Kueue's webhook, and Kueue's
        rotator does not report ready until it has put its CA into each of them. ../shared/crds
        carries them without conversion: point them at the loopback webhook, as the
        post-renderer does when the chart installs them. Without those CRDs the chart's own are
        applied first."""
        base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
        if api.request("GET", base + "workloads.kueue.x-k8s.io")[0] == 404:
            docs = []
            for plural in KUEUE_CRDS:
                docs += self.helm_render(state, "kueue", KUEUE_RELEASE[0], KUEUE_RELEASE[1], "templates/crd/kueue.x-k8s.io_%s.yaml" % plural)
            self.apply_crds(api, docs)
        with open(os.path.join(self.pki, "kueue-ca.crt"), "rb") as handle:
            ca_bundle = base64.b64encode(handle.read()).decode()
        conversion = {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
                      "clientConfig": {"url": "https://127.0.0.1:%d/convert" % webhook_port, "caBundle": ca_bundle}}}
        for plural in KUEUE_CONVERTED_CRDS:
            api.ok("PATCH", base + plural + ".kueue.x-k8s.io", [{"op": "add", "path": "/spec/conversion", "value": conversion}],
                   content_type="application/json-patch+json", accept=(200,))

    def helm_render(self, state, chart, release, namespace, show_only, sets=()):
        """Documents one template of a chart renders, as the role would install it (offline)."""
        import yaml

        home = os.path.join(self.state_dir, "helm")
        env = dict(component_env(), HELM_CACHE_HOME=home + "/cache", HELM_CONFIG_HOME=home + "/config", HELM_DATA_HOME=home + "/data")
        cmd = [os.path.join(state["bin_dir"], "helm"), "template", release, os.path.join(state["charts_dir"], chart), "--namespace", namespace,
               "--show-only", show_only]
        for item in sets:
            cmd += ["--set", item]
        out = run(cmd, env=env).stdout.decode()
        return [doc for doc in yaml.safe_load_all(out) if doc]

    def chart_config(self, state, chart, release, namespace, show_only, key):
        """The controller configuration file a chart's ConfigMap carries."""
        import yaml

        return yaml.safe_load(self.helm_render(state, chart, release, namespace, show_only)[0]["data"][key])

    def ensure_helm_owned(self, api, obj, release, namespace):
        """Creates obj if absent, owned by the Helm release that installs it later (so `helm
        install` adopts it instead of refusing an object it does not own)."""
        meta = obj["metadata"]
        meta.setdefault("labels", {})["app.kubernetes.io/managed-by"] = "Helm"
        meta.setdefault("annotations", {}).update({"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace})
        path = "/api/v1/namespaces/%s/%ss" % (meta["namespace"], obj["kind"].lower())
        api.ok("POST", path, obj, accept=(201, 409))

    def ensure_namespace(self, api, name):
        api.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, accept=(201, 409))

    def operator_commands(self, state, api, name, bin_dirs):
        """[(process name, binary, args, env, readiness URL)] for one operator, after writing the
        private HOME/TMPDIR, certificates and configuration it reads."""
        ports = state["ports"]
        for key in ("health", "metrics", "webhook"):
            ports.setdefault("%s_%s" % (name, key), free_port())
        health, metrics, webhook = ports[name + "_health"], ports[name + "_metrics"], ports[name + "_webhook"]
        home = os.path.join(self.state_dir, "operators", name)
        tmp, certs = os.path.join(home, "tmp"), os.path.join(home, "certs")
        # KServe and the Trainer read their webhook serving pair from the default directory.
        default_certs = os.path.join(tmp, "k8s-webhook-server", "serving-certs")
        for directory in (certs, default_certs):
            os.makedirs(directory, exist_ok=True)
            shutil.copyfile(os.path.join(self.pki, "webhook.crt"), os.path.join(directory, "tls.crt"))
            shutil.copyfile(os.path.join(self.pki, "webhook.key"), os.path.join(directory, "tls.key"))
        env = dict(component_env(), HOME=home, TMPDIR=tmp, KUBECONFIG=self.kubeconfig)
        config_path = os.path.join(home, "config.yaml")
        loop = "127.0.0.1:%d"
        ready = "http://127.0.0.1:%d/readyz" % health

        def write_config(config):
            with open(config_path, "w") as handle:
                json.dump(config, handle, indent=2)

        if name == "jobset":
            # The Configuration the Trainer chart's bundled JobSet installs, made local.
            config = self.chart_config(
                state, "kubeflow-trainer", "kubeflow-trainer", "kubeflow-system", "charts/jobset/templates/controller/configmap.yaml",
                "controller_manager_config.yaml",
            )
            config.update(
                leaderElection={"leaderElect": False}, health={"healthProbeBindAddress": loop % health},
                metrics={"bindAddress": loop % metrics, "certDir": certs}, webhook={"host": "127.0.0.1", "port": webhook, "certDir": certs},
                internalCertManagement={"enable": False},
            )
            write_config(config)
            args = ["--kubeconfig=" + self.kubeconfig, "--config=" + config_path, "--zap-log-level=2"]
            return [("jobset", os.path.join(bin_dirs[name], "jobset"), args, env, ready)]
        if name == "kserve":
            namespace = KSERVE_RELEASE[1]
            self.ensure_namespace(api, namespace)
            # The manager exits without its ConfigMap; Standard mode is the one that works here.
            configmap = self.helm_render(
                state, "kserve-resources", KSERVE_RELEASE[0], namespace, "templates/common/configmap.yaml", ["kserve.controller.deploymentMode=Standard"]
            )[0]
            self.ensure_helm_owned(api, configmap, *KSERVE_RELEASE)
            env["POD_NAMESPACE"] = namespace
            args = [
                "--kubeconfig=" + self.kubeconfig, "--metrics-addr=" + loop % metrics, "--health-probe-addr=" + loop % health,
                "--webhook-port=%d" % webhook, "--leader-elect=false",
            ]
            return [("kserve", os.path.join(bin_dirs[name], "manager"), args, env, ready)]
        if name == "trainer":
            # The runtime CRDs are the chart's (../shared/crds holds TrainJob only); the manager
            # exits without them. The role lets Helm adopt them when it installs the chart.
            crds = []
            for kind in ("trainingruntimes", "clustertrainingruntimes"):
                crds += self.helm_render(
                    state, "kubeflow-trainer", "kubeflow-trainer", "kubeflow-system", "templates/crd/trainer.kubeflow.org_%s.yaml" % kind
                )
            self.apply_crds(api, crds)
            config = self.chart_config(
                state, "kubeflow-trainer", "kubeflow-trainer", "kubeflow-system", "templates/manager/configmap.yaml", "controller_manager_config.yaml"
            )
            ports.setdefault("trainer_status", free_port())
            config["health"]["healthProbeBindAddress"] = loop % health
            config["metrics"]["bindAddress"] = loop % metrics
            config["webhook"] = {"host": "127.0.0.1", "port": webhook}
            config["leaderElection"]["leaderElect"] = False
            config["certManagement"]["enable"] = False
            config["statusServer"]["port"] = ports["trainer_status"]
            write_config(config)
            args = ["--kubeconfig=" + self.kubeconfig, "--config=" + config_path]
            return [("trainer", os.path.join(bin_dirs[name], "trainer-controller-manager"), args, env, ready)]
        if name == "kueue":
            namespace = KUEUE_RELEASE[1]
            self.ensure_namespace(api, namespace)
            config = self.chart_config(state, "kueue", KUEUE_RELEASE[0], namespace, "templates/manager/manager-config.yaml", "controller_manager_config.yaml")
            config.update(
                namespace=namespace, health={"healthProbeBindAddress": loop % health}, leaderElection={"leaderElect": False},
                webhook={"host": "127.0.0.1", "port": webhook, "certDir": certs},
            )
            config["metrics"]["bindAddress"] = loop % metrics
            # Kueue v0.19.2 exits when a TrainJob CRD is there without the Trainer's runtime CRDs
            # (../shared/crds holds TrainJob only; the Trainer's controller brings the others).
            role = kueue_role_defaults()
            runtimes = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/trainingruntimes.trainer.kubeflow.org"
            wanted = role["gpu_scheduling_kueue_frameworks"]
            frameworks = [f for f in wanted if f != "trainer.kubeflow.org/trainjob" or api.request("GET", runtimes)[0] == 200]
            if len(frameworks) < len(wanted):
                log("kueue: TrainJob integration off (no TrainingRuntime CRD: start the trainer controller too)")
            config["integrations"]["frameworks"] = frameworks
            config["managedJobsNamespaceSelector"] = role["gpu_scheduling_kueue_namespace_selector"]
            classes = role["gpu_scheduling_kueue_device_classes"]
            config.setdefault("resources", {})["deviceClassMappings"] = (
                [{"name": role["gpu_scheduling_gpu_resource"], "deviceClassNames": classes}] if classes else [])
            # Internal cert management stays on, as the chart sets it: with it off, v0.19.2 reads
            # its metrics certificate from /etc/kueue/metrics/certs (cmd/kueue/main.go), outside
            # any directory the launcher owns. Its rotator keeps a valid pair it finds in the
            # Secret; the launcher puts there a pair of its own that is also valid for
            # 127.0.0.1, where the API server reaches the webhooks (see make_kueue_pki).
            self.ensure_kueue_certificates(api, namespace, config["internalCertManagement"], certs)
            self.ensure_kueue_crd_conversion(state, api, webhook)
            write_config(config)
            # The visibility API is an aggregated API server: its APIService can only point to a
            # Service, which cannot lead to a loopback process (see the post-renderer).
            args = ["--kubeconfig=" + self.kubeconfig, "--config=" + config_path, "--zap-log-level=2", "--feature-gates=VisibilityOnDemand=false"]
            return [("kueue", os.path.join(bin_dirs[name], "kueue"), args, env, ready)]
        if name == "fluid":
            # No health endpoint and no webhook server: ready when metrics answer. The Alluxio
            # runtime controller runs `ddc-helm` (helm v3) on the runtime charts in $HOME/charts.
            ports.setdefault("fluid_alluxio_metrics", free_port())
            bin_path = os.path.join(home, "bin")
            os.makedirs(bin_path, exist_ok=True)
            for link, target in ((os.path.join(bin_path, "ddc-helm"), os.path.join(state["bin_dir"], "helm")),
                                 (os.path.join(home, "charts"), os.path.join(bin_dirs[name], "charts"))):
                if not os.path.islink(link):
                    os.symlink(target, link)
            env["PATH"] = bin_path + os.pathsep + env.get("PATH", "")
            common = ["start", "--enable-leader-election=false", "--development=false"]
            return [
                ("fluid-dataset", os.path.join(bin_dirs[name], "dataset"), common + ["--metrics-addr=" + loop % metrics], env,
                 "http://127.0.0.1:%d/metrics" % metrics),
                ("fluid-alluxio", os.path.join(bin_dirs[name], "alluxio"), common + ["--metrics-addr=" + loop % ports["fluid_alluxio_metrics"]], env,
                 "http://127.0.0.1:%d/metrics" % ports["fluid_alluxio_metrics"]),
            ]
        raise RuntimeError("unknown operator %s" % name)

    def ensure_operators(self, state, api, wanted):
        """Starts the wanted controllers that do not run, stops the others, and writes
        webhooks.json for the post-renderer. A controller that does not become healthy fails,
        naming its log."""
        procs = state["processes"]
        names = [n for n in OPERATORS if n in wanted]
        for proc in [p for p in procs if p.get("operator")]:
            if proc.get("group") not in names or not self.pid_alive(proc):
                self.stop([proc])
                procs.remove(proc)
        self.save_state(state)
        running = set(p["group"] for p in procs if p.get("operator"))
        missing = [n for n in names if n not in running]
        if missing:
            bin_dirs = self.build_operators(missing)
            self.make_webhook_pki()
            for name in missing:
                started = time.time()
                for pname, binary, args, env, ready in self.operator_commands(state, api, name, bin_dirs):
                    proc = self.start(state, pname, binary, args, env=env, operator=True)
                    procs[-1]["group"] = name
                    self.save_state(state)
                    try:
                        self.wait_until(pname, lambda url=ready: _http_status(url) == 200, 120, proc, pname)
                    except RuntimeError as exc:
                        raise RuntimeError("controller %s did not become healthy (log %s): %s" % (pname, procs[-1]["log"], exc))
                log("controller %s healthy in %.1fs" % (name, time.time() - started))
        if not names:
            # No webhook server runs: the post-renderer drops the charts' webhook configurations.
            if os.path.exists(self.webhooks_file):
                os.unlink(self.webhooks_file)
            return
        with open(os.path.join(self.pki, "webhook-ca.crt"), "rb") as handle:
            ca_bundle = base64.b64encode(handle.read()).decode()
        servers, ca_bundles = {}, {}
        for name in names:
            for service in WEBHOOK_SERVICES.get(name, []):
                servers[service] = "https://127.0.0.1:%d" % state["ports"][name + "_webhook"]
                if name == "kueue":  # its own CA (make_kueue_pki)
                    with open(os.path.join(self.pki, "kueue-ca.crt"), "rb") as handle:
                        ca_bundles[service] = base64.b64encode(handle.read()).decode()
        tmp = self.webhooks_file + ".tmp"
        with open(tmp, "w") as handle:
            json.dump({"ca_bundle": ca_bundle, "ca_bundles": ca_bundles, "servers": servers}, handle, indent=2)
        os.replace(tmp, self.webhooks_file)

    # Commands ---------------------------------------------------------------------------
    def up(self, opts):
        started = time.time()
        state = self.load_state()
        if self.healthy(state):
            api = Api(state["ports"]["apiserver"], self.pki)
            self.create_nodes(api, opts)
            state["charts_dir"] = opts.charts_dir
            self.ensure_operators(state, api, opts.operators)
            log("already running (kubeconfig %s)" % self.kubeconfig)
            return state
        if state:
            log("stale state found; cleaning up first")
            self.down(quiet=True)
        bin_dir = self.build_binaries()
        os.makedirs(self.state_dir, exist_ok=True)
        self.make_pki()
        ports = dict((k, free_port()) for k in ("etcd", "etcd_peer", "apiserver", "controller_manager", "scheduler", "kwok"))
        state = {"processes": [], "ports": ports, "bin_dir": bin_dir, "kubeconfig": self.kubeconfig, "charts_dir": opts.charts_dir}
        self.save_state(state)
        try:
            self._start_all(state, bin_dir, ports)
            api = Api(ports["apiserver"], self.pki)
            nodes = self.create_nodes(api, opts)
            if opts.crds_dir and os.path.isdir(opts.crds_dir):
                self.install_crds(api, opts.crds_dir)
            else:
                log("no third-party CRDs installed (no %s): the charts bring their own" % (opts.crds_dir or "--crds-dir"))
            self.wait_until("nodes Ready", lambda: self._nodes_ready(api, nodes), 120, self._kwok, "kwok")
            self.wait_until(
                "default ServiceAccount", lambda: api.request("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200, 60,
                name="kube-controller-manager",
            )
            self.ensure_operators(state, api, opts.operators)
        except Exception:
            log("start-up failed; stopping what was started")
            self.down(quiet=True, keep_logs=True)
            raise
        log("up in %.1fs; kubeconfig %s" % (time.time() - started, self.kubeconfig))
        return state

    def _start_all(self, state, bin_dir, ports):
        def b(name):
            return os.path.join(bin_dir, name)

        def p(name):
            return os.path.join(self.pki, name)

        etcd_url = "http://127.0.0.1:%d" % ports["etcd"]
        proc = self.start(
            state,
            "etcd",
            b("etcd"),
            [
                "--data-dir=%s" % os.path.join(self.state_dir, "etcd"),
                "--listen-client-urls=" + etcd_url,
                "--advertise-client-urls=" + etcd_url,
                "--listen-peer-urls=http://127.0.0.1:%d" % ports["etcd_peer"],
                "--initial-advertise-peer-urls=http://127.0.0.1:%d" % ports["etcd_peer"],
                "--initial-cluster=default=http://127.0.0.1:%d" % ports["etcd_peer"],
                "--unsafe-no-fsync",
                "--quota-backend-bytes=8589934592",
                "--log-level=warn",
            ],
        )
        self.wait_until("etcd", lambda: b'"health":"true"' in _http_get(etcd_url + "/health"), 60, proc, "etcd")
        proc = self.start(
            state,
            "kube-apiserver",
            b("kube-apiserver"),
            [
                "--etcd-servers=" + etcd_url,
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",  # loopback is not a valid endpoint address
                "--secure-port=%d" % ports["apiserver"],
                "--tls-cert-file=" + p("apiserver.crt"),
                "--tls-private-key-file=" + p("apiserver.key"),
                "--client-ca-file=" + p("ca.crt"),
                "--authorization-mode=Node,RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file=" + p("sa.pub"),
                "--service-account-signing-key-file=" + p("sa.key"),
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
                "--max-requests-inflight=800",
                "--max-mutating-requests-inflight=400",
                "--profiling=false",
                "--v=1",
            ],
        )
        api = Api(ports["apiserver"], self.pki)
        self.wait_until("kube-apiserver /readyz", lambda: api.request("GET", "/readyz")[0] == 200, 120, proc, "kube-apiserver")
        self.write_kubeconfig(ports["apiserver"])
        common = [
            "--kubeconfig=" + self.kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        ]
        self.start(
            state,
            "kube-controller-manager",
            b("kube-controller-manager"),
            common
            + [
                "--secure-port=%d" % ports["controller_manager"],
                "--service-account-private-key-file=" + p("sa.key"),
                "--root-ca-file=" + p("ca.crt"),
                "--cluster-signing-cert-file=" + p("ca.crt"),
                "--cluster-signing-key-file=" + p("ca.key"),
                "--use-service-account-credentials=false",
                "--node-monitor-grace-period=60s",
                # Client-side rate limits sized for a simulated fleet: at the default 20 QPS, lifting
                # the not-ready taint of 1000 new nodes (and of any node added later) takes minutes,
                # while the scheduler and Kueue leave them out.
                "--kube-api-qps=300",
                "--kube-api-burst=600",
                "--v=1",
            ],
        )
        self.start(state, "kube-scheduler", b("kube-scheduler"), common + ["--secure-port=%d" % ports["scheduler"], "--v=1"])
        proc = self.start(state, "kwok", b("kwok"), kwok_args(bin_dir, self.kubeconfig, "10.244.0.0/16", "10.244.0.1"))
        self._kwok = proc

    @staticmethod
    def _nodes_ready(api, names):
        items = api.ok("GET", "/api/v1/nodes").get("items") or []
        ready = set()
        for node in items:
            for cond in (node.get("status") or {}).get("conditions") or []:
                if cond["type"] == "Ready" and cond["status"] == "True":
                    ready.add(node["metadata"]["name"])
        return set(names) <= ready

    def stop(self, procs):
        """SIGTERM, then SIGKILL after 15 s, each process that still runs the binary we started."""
        for proc in reversed(procs):
            if self.pid_alive(proc):
                os.kill(proc["pid"], signal.SIGTERM)
        deadline = time.time() + 15
        for proc in reversed(procs):
            while self.pid_alive(proc) and time.time() < deadline:
                time.sleep(0.1)
            if self.pid_alive(proc):
                os.kill(proc["pid"], signal.SIGKILL)
                kill_deadline = time.time() + 5
                while self.pid_alive(proc) and time.time() < kill_deadline:
                    time.sleep(0.05)

    def down(self, quiet=False, keep_logs=False):
        state = self.load_state()
        if not state:
            if not quiet:
                log("not running")
            if os.path.isdir(self.state_dir) and not keep_logs:
                shutil.rmtree(self.state_dir, ignore_errors=True)
            return
        self.stop(state["processes"])
        if keep_logs:
            os.unlink(self.state_file)
            shutil.rmtree(os.path.join(self.state_dir, "etcd"), ignore_errors=True)
        else:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        if not quiet:
            log("stopped %d processes and removed %s" % (len(state["processes"]), self.state_dir))

    def status(self):
        state = self.load_state()
        if not state:
            print("not running")
            return 1
        for proc in state["processes"]:
            alive = self.pid_alive(proc)
            line = "%-24s pid %-8d %-8s" % (proc["name"], proc["pid"], "running" if alive else "STOPPED")
            if alive:
                line += " rss %4d MiB" % (_rss_kib(proc["pid"]) // 1024)
            if proc.get("operator"):
                line += "  log " + proc["log"]
            print(line)
        ok = self.healthy(state)
        print("apiserver https://127.0.0.1:%d %s" % (state["ports"]["apiserver"], "ready" if ok else "NOT READY"))
        if ok:
            nodes = Api(state["ports"]["apiserver"], self.pki).ok("GET", "/api/v1/nodes").get("items") or []
            gpus = sum(int((n.get("status") or {}).get("capacity", {}).get("nvidia.com/gpu", 0)) for n in nodes)
            print("nodes %d, GPUs %d" % (len(nodes), gpus))
        print("kubeconfig " + self.kubeconfig)
        return 0 if ok else 1

    def env(self):
        state = self.load_state() or {}
        print("export KUBECONFIG=%s" % self.kubeconfig)
        print("export K8S_AUTH_KUBECONFIG=%s" % self.kubeconfig)
        if state.get("bin_dir"):
            print('export PATH="%s:$PATH"' % state["bin_dir"])
        return 0


def component_env():
    """Environment for the control-plane processes. Their only peers are on 127.0.0.1 (never
    proxied). Anything else they might dial (a webhook or aggregated API behind a Service of a
    simulated pod) goes to a closed loopback port and fails at once: no traffic leaves the host."""
    env = dict((k, v) for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"))
    env.update({"HTTP_PROXY": "http://127.0.0.1:1", "HTTPS_PROXY": "http://127.0.0.1:1", "NO_PROXY": "127.0.0.1,localhost,::1"})
    return env


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _http_status(url):
    """Status of a GET to a loopback URL, never through a proxy."""
    from urllib.error import HTTPError
    from urllib.request import ProxyHandler, build_opener

    try:
        with build_opener(ProxyHandler({})).open(url, timeout=2) as resp:
            return resp.status
    except HTTPError as exc:
        return exc.code


def _http_get(url):
    from urllib.request import urlopen

    with urlopen(url, timeout=2) as resp:
        return resp.read()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument("--state-dir", default=DEFAULT_STATE)
    parser.add_argument("--gpu-nodes", type=int, default=int(os.environ.get("AIINFRA_GPU_NODES", 4)))
    parser.add_argument("--gpus-per-node", type=int, default=int(os.environ.get("AIINFRA_GPUS_PER_NODE", 8)))
    parser.add_argument("--gpu-product", default=os.environ.get("AIINFRA_GPU_PRODUCT", "NVIDIA-H100-80GB-HBM3"),
                        help="GFD product label; a comma-separated list assigns the products to racks in turn")
    parser.add_argument("--gpu-node-prefix", default="gpu-node")
    parser.add_argument("--nodes-per-rack", type=int, default=int(os.environ.get("AIINFRA_NODES_PER_RACK", 2)),
                        help="GPU nodes per rack (one NVLink domain, one GPU product; label %s)" % TOPOLOGY_RACK_LABEL)
    parser.add_argument("--racks-per-block", type=int, default=int(os.environ.get("AIINFRA_RACKS_PER_BLOCK", 2)),
                        help="racks per block (label %s)" % TOPOLOGY_BLOCK_LABEL)
    parser.add_argument("--no-dra-slices", dest="dra_slices", action="store_false",
                        help="publish no ResourceSlices (driver %s) for the simulated GPUs" % DRA_DRIVER)
    parser.add_argument("--cpu-nodes", type=int, default=int(os.environ.get("AIINFRA_CPU_NODES", 1)))
    parser.add_argument("--taint-gpu-nodes", action="store_true", help="taint GPU nodes nvidia.com/gpu=present:NoSchedule")
    parser.add_argument("--crds-dir", default=os.environ.get("AIINFRA_CRDS_DIR", DEFAULT_CRDS), help="install every CRD found here ('' for none)")
    parser.add_argument("--charts-dir", default=DEFAULT_CHARTS, help="the chart mirror the operators' configuration is rendered from")
    parser.add_argument(
        "--operators", nargs="?", const=DEFAULT_OPERATORS, default=os.environ.get("AIINFRA_OPERATORS", DEFAULT_OPERATORS),
        help="controllers to run beside the control plane, comma-separated, from %s (default %s)" % (",".join(OPERATORS), DEFAULT_OPERATORS),
    )
    parser.add_argument("--no-operators", dest="operators", action="store_const", const="", help="the bare control plane, no controllers")
    opts = parser.parse_args(argv)
    opts.operators = [n for n in opts.operators.split(",") if n]
    argv = sys.argv[1:] if argv is None else argv
    asked = "--operators" in argv or any(a.startswith("--operators=") for a in argv) or "AIINFRA_OPERATORS" in os.environ
    if opts.command == "up" and opts.operators and not asked and not os.path.isdir(opts.charts_dir):
        # A plain clone: the controllers' configuration is rendered from the chart mirror.
        log("no chart mirror at %s: no operator controllers started (--charts-dir to run them)" % opts.charts_dir)
        opts.operators = []
    unknown = sorted(set(opts.operators) - set(OPERATORS))
    if unknown:
        parser.error("unknown operator(s): %s (known: %s)" % (", ".join(unknown), ", ".join(OPERATORS)))
    cluster = LocalCluster(opts.state_dir)
    if opts.command == "up":
        try:
            cluster.up(opts)
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            log("FAILED: %s" % exc)
            return 1
        return 0
    if opts.command == "down":
        cluster.down()
        return 0
    if opts.command == "status":
        return cluster.status()
    return cluster.env()


if __name__ == "__main__":
    sys.exit(main())
