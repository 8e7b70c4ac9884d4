"""The cluster modules run inside Ansible's worker on a local connection (plugins/action, through
plugin_utils/in_process), and as a module process everywhere else: both give the same results."""

import json
import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def play(namespace, out_file, environment=None, play_vars=None):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "in-process", "namespace": namespace}, "data": {"k": "v"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": namespace}, "stringData": {"token": "sup3r-s3cret-value"}}
    tasks = [
        {"name": "create", "aiinfra.cluster.resources": {"definitions": [cm]}, "register": "create"},
        {"name": "again", "aiinfra.cluster.resources": {"definitions": [cm]}, "register": "again"},
        {"name": "preview", "aiinfra.cluster.resources": {"definitions": [dict(cm, data={"k": "w"})]}, "check_mode": True, "diff": True,
         "register": "preview"},
        {"name": "bad input", "aiinfra.cluster.resources": {"definitions": [{"apiVersion": "v1", "kind": "ConfigMap"}]}, "register": "bad",
         "ignore_errors": True},
        {"name": "secret", "aiinfra.cluster.resources": {"definitions": [secret]}, "no_log": True, "register": "secret"},
        {"name": "report", "aiinfra.cluster.gpu_node_info": {}, "register": "gpus"},
        {"name": "save", "ansible.builtin.copy": {
            "dest": out_file,
            "content": "{{ {'create': create, 'again': again, 'preview': preview, 'bad': bad, 'gpus': gpus} | to_json }}"}},
    ]
    if environment:
        for task in tasks[:-1]:
            task["environment"] = environment
    return [{"hosts": "localhost", "connection": "local", "gather_facts": False, "vars": play_vars or {}, "tasks": tasks}]


def run(tmp_path, namespace, name, in_process, environment=None, play_vars=None):
    path = tmp_path / ("%s.yml" % name)
    out = tmp_path / ("%s.json" % name)
    path.write_text(yaml.safe_dump(play(namespace, str(out), environment, play_vars)))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"), ANSIBLE_NOCOLOR="1",
               AIINFRA_MODULES_IN_PROCESS="1" if in_process else "0")
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-vvv", str(path)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    return json.loads(out.read_text()), proc.stdout


def comparable(results):
    """What must not depend on where the module ran (object metadata differs between runs)."""
    out = {}
    for name, res in results.items():
        if name == "gpus":  # requests change with what else runs; capacity does not
            out[name] = (res["totals"]["gpu_capacity"], res["dra"]["devices"], res["api_requests"])
            continue
        keep = dict((k, v) for k, v in res.items() if k not in ("resources", "diff", "invocation"))
        keep["actions"] = [r.get("action") for r in res.get("resources", [])]
        keep["diff_kinds"] = sorted(d.get("after", {}).get("kind", "") for d in res.get("diff", []) if isinstance(d, dict))
        out[name] = keep
    return out


def test_same_results_in_process_and_as_a_module_process(tmp_path, kube, namespace):
    inside, log_inside = run(tmp_path, namespace, "inside", True)
    # What the first run created, the second creates again: both start from the same state.
    kube.delete("/api/v1/namespaces/%s/configmaps/in-process" % namespace)
    outside, log_outside = run(tmp_path, namespace, "outside", False)
    # -vvv shows each module process Ansible starts; in process there is none.
    assert "AnsiballZ_resources.py" not in log_inside and "AnsiballZ_gpu_node_info.py" not in log_inside
    assert "AnsiballZ_resources.py" in log_outside and "AnsiballZ_gpu_node_info.py" in log_outside
    assert comparable(inside) == comparable(outside)
    assert inside["create"]["changed"] is True and inside["again"]["changed"] is False
    assert inside["again"]["api_requests"] == {"GET": 1}, inside["again"]
    assert inside["preview"]["changed"] is True and inside["preview"]["diff"], inside["preview"]
    assert inside["bad"]["failed"] is True and inside["bad"]["msg"] == "resource #1 (ConfigMap) has no metadata.name"
    assert inside["gpus"]["totals"]["gpu_capacity"] > 0
    # no_log holds in process too: the value is in no output.
    assert "sup3r-s3cret-value" not in log_inside and "sup3r-s3cret-value" not in log_outside


def test_a_task_environment_keeps_the_module_process(tmp_path, kube, namespace):
    # The module process would see the task's environment; the worker does not, so such a task
    # keeps the normal path (as do become, async and remote or delegated connections).
    results, log = run(tmp_path, namespace, "env", True, environment={"AIINFRA_TEST_MARK": "1"})
    assert "AnsiballZ_resources.py" in log
    assert results["create"]["changed"] is True and results["again"]["changed"] is False


def test_another_interpreter_keeps_the_module_process(tmp_path, kube, namespace):
    # A play that names another Python for localhost (a virtualenv with other packages) gets it.
    other = "/usr/bin/python3"
    if not os.path.exists(other) or os.path.realpath(other) == os.path.realpath(sys.executable):
        pytest.skip("no second Python here")
    results, log = run(tmp_path, namespace, "interp", True, play_vars={"ansible_python_interpreter": other})
    assert "AnsiballZ_resources.py" in log and other in log
    assert results["create"]["changed"] is True and results["again"]["changed"] is False
