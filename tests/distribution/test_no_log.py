# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""No secret in any task output: modules run at -vvv with --diff (the most Ansible ever prints:
module arguments, results, diffs) with known test secrets, and the whole output is searched for
each secret as given, base64-encoded (how a Secret's data comes back from the API server) and
URL-quoted. A bearer token given as an option and through K8S_AUTH_API_KEY (as an AWX
credential injects it) is checked the same way."""

import base64
import os
import uuid

import pytest
import yaml

from conftest import ansible_playbook, delete_namespace, recap, tail, token_kubeconfig

try:
    from urllib.parse import quote
except ImportError:  # pragma: no cover
    from urllib import quote


def encodings(secret):
    raw = secret.encode("utf-8")
    return {
        "plain": secret,
        "base64": base64.b64encode(raw).decode("ascii"),
        "base64 (unpadded)": base64.b64encode(raw).decode("ascii").rstrip("="),
        "url-quoted": quote(secret, safe=""),
    }


def leaks(output, secrets):
    """One line per secret found, in any of its encodings, with the count and the first place."""
    found = []
    for secret in secrets:
        for name, form in encodings(secret).items():
            if form and form in output:
                found.append("%s... (%s) %d time(s), first at: %s" % (secret[:6], name, output.count(form), _context(output, form)))
                break
    return found


def _context(output, form):
    at = output.index(form)
    return output[max(0, at - 160):at + len(form) + 20].replace("\n", " | ")


def write_playbook(path, tasks):
    with open(str(path), "w") as handle:
        yaml.safe_dump([{"name": "no_log audit", "hosts": "localhost", "gather_facts": False, "tasks": tasks}], handle, sort_keys=False)
    return str(path)


@pytest.fixture
def audit_namespace(kube):
    name = "aiinfra-nolog-%s" % uuid.uuid4().hex[:6]
    kube.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    delete_namespace(kube, name)


@pytest.mark.upstream
def test_storage_credentials_never_reach_the_output(installed_collections, kubeconfig, kube, audit_namespace, tmp_path):
    """fluid_dataset stores credentials in a Secret: applied, changed again, and deleted at -vvv --diff."""
    secrets = ["AKIAnolog%s" % uuid.uuid4().hex[:12].upper(), "nolog-secret-%s" % uuid.uuid4().hex]

    def dataset(credentials, state="present"):
        return {
            "name": "Dataset with credentials (%s)" % state,
            "aiinfra.cluster.fluid_dataset": {
                "name": "audit", "namespace": audit_namespace, "state": state, "wait": False,
                "mounts": [{"name": "data", "mount_point": "s3://audit-bucket/data"}],
                "credentials": credentials,
            },
        }

    first = {"aws.accessKeyId": secrets[0], "aws.secretKey": secrets[1]}
    second = {"aws.accessKeyId": secrets[0], "aws.secretKey": secrets[1] + "-rotated"}
    playbook = write_playbook(tmp_path / "audit.yml", [dataset(first), dataset(second), dataset(second, "absent")])
    rc, out = ansible_playbook(["-vvv", "--diff", playbook], installed_collections, tmp_path, K8S_AUTH_KUBECONFIG=kubeconfig)
    assert rc == 0, tail(out)
    assert recap(out)["localhost"]["changed"] == 3, tail(out)
    found = leaks(out, secrets + [secrets[1] + "-rotated"])
    assert not found, "secrets in the -vvv --diff output:\n" + "\n".join(found)


def test_bearer_token_never_reaches_the_output(installed_collections, rbac_applied, kubeconfig, kube, tmp_path):
    """A service-account token as the api_key option and as K8S_AUTH_API_KEY (AWX's bearer-token credential)."""
    _path, token = token_kubeconfig(kube, kubeconfig, "aiinfra-workloads", tmp_path / "kubeconfig")
    with open(kubeconfig) as handle:
        admin = yaml.safe_load(handle)
    cluster = admin["clusters"][0]["cluster"]
    ca_file = tmp_path / "ca.crt"
    if cluster.get("certificate-authority-data"):
        ca_file.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    else:
        ca_file.write_bytes(open(os.path.join(os.path.dirname(kubeconfig), cluster["certificate-authority"]), "rb").read())
    tasks = [
        {"name": "Token as an option", "aiinfra.cluster.gpu_node_info": {"host": cluster["server"], "api_key": token, "ca_cert": str(ca_file)}},
        {"name": "Token from the environment", "aiinfra.cluster.gpu_node_info": {}, "register": "from_env"},
        {"name": "The environment token was used", "ansible.builtin.assert": {"that": ["from_env.totals.nodes >= 1"]}},
    ]
    playbook = write_playbook(tmp_path / "token.yml", tasks)
    rc, out = ansible_playbook(
        ["-vvv", "--diff", playbook], installed_collections, tmp_path,
        K8S_AUTH_HOST=cluster["server"], K8S_AUTH_API_KEY=token, K8S_AUTH_SSL_CA_CERT=str(ca_file),
    )
    assert rc == 0, tail(out)
    assert recap(out)["localhost"]["failed"] == 0, tail(out)
    found = leaks(out, [token])
    assert not found, "the token is in the -vvv output:\n" + "\n".join(found)


def test_failed_authentication_does_not_echo_the_token(installed_collections, kubeconfig, tmp_path):
    """Error paths leak most often: a rejected token must not appear in the failure message."""
    with open(kubeconfig) as handle:
        server = yaml.safe_load(handle)["clusters"][0]["cluster"]["server"]
    token = "nolog-bad-token-%s" % uuid.uuid4().hex
    playbook = write_playbook(tmp_path / "bad.yml", [
        {"name": "Rejected token", "aiinfra.cluster.gpu_node_info": {"host": server, "api_key": token, "validate_certs": False}},
    ])
    rc, out = ansible_playbook(["-vvv", playbook], installed_collections, tmp_path)
    assert rc != 0 and ("Unauthorized" in out or "401" in out), tail(out)
    found = leaks(out, [token])
    assert not found, "the token is in the failure output:\n" + "\n".join(found)
