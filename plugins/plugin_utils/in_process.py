# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)
"""Run a cluster module inside Ansible's worker process when the task runs on the controller.

The cluster modules only speak HTTPS to the API server (standard library, no remote state), so
on a local connection the module process Ansible would start per task (interpreter start-up,
AnsiballZ payload, imports: about 0.3 s) buys nothing. Each worker process serves one task and
exits, so setting the module's parameters and hooks in it leaks into no other task.

Everything else keeps the normal path: a remote or delegated connection (a bastion host), become,
async, a task `environment:` (the module process would see it; this process would not), an
explicit ansible_python_interpreter other than the controller's Python,
ansible-core before 2.19.1 (no module result hook), and AIINFRA_MODULES_IN_PROCESS=0 (the switch
the tests use to compare both paths)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import importlib
import io
import json
import os
import sys
import traceback

from ansible.errors import AnsibleError
from ansible.module_utils import basic
from ansible.plugins.action import ActionBase
from ansible.vars.clean import remove_internal_keys

try:  # ansible-core 2.19+: serialization profiles and the module result hook this relies on
    from ansible.module_utils.common.json import Direction, get_module_encoder

    HAS_RESULT_HOOK = hasattr(basic.AnsibleModule, "_record_module_result")
except ImportError:  # older ansible-core: every task takes the module process path
    Direction = get_module_encoder = None
    HAS_RESULT_HOOK = False

# The collection's modules use the default serialization profile (no module metadata).
PROFILE = "legacy"
SWITCH = "AIINFRA_MODULES_IN_PROCESS"


def in_process_enabled():
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


class InProcessModuleAction(ActionBase):
    """The action plugin of a cluster module: the module's own code, in process where it can."""

    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super(InProcessModuleAction, self).run(tmp, task_vars)
        del tmp
        if self._can_run_in_process(task_vars or {}):
            result.update(self._run_in_process(task_vars))
        else:
            wrap_async = bool(self._task.async_val) and not self._connection.has_native_async
            result.update(self._execute_module(task_vars=task_vars, wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _can_run_in_process(self, task_vars):
        return (
            HAS_RESULT_HOOK
            and in_process_enabled()
            and getattr(self._connection, "transport", None) == "local"
            and not self._play_context.become
            and not self._task.async_val
            and not any(self._task.environment or [])
            and self._same_interpreter(task_vars)
        )

    def _same_interpreter(self, task_vars):
        """An explicit ansible_python_interpreter other than this Python (a virtualenv with the
        `kubernetes` package for an OIDC kubeconfig, say) keeps the module process."""
        wanted = task_vars.get("ansible_python_interpreter")
        if wanted is None:
            return True
        wanted = str(self._templar.template(wanted))
        return wanted.startswith("auto") or os.path.realpath(wanted) == os.path.realpath(sys.executable)

    def _run_in_process(self, task_vars):
        name = self._task.resolved_action or self._task.action
        module = importlib.import_module("ansible_collections.%s.plugins.modules.%s" % tuple(name.rsplit(".", 1)))
        args = copy.deepcopy(self._task.args)
        self._update_module_args(name, args, task_vars)
        recorded = []

        def record(module_self, result):
            recorded.append(result)

        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}, cls=get_module_encoder(PROFILE, Direction.CONTROLLER_TO_MODULE)).encode()
        basic._ANSIBLE_PROFILE = PROFILE
        basic.AnsibleModule._record_module_result = record
        stdout, stderr = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
        try:
            module.main()
        except SystemExit:
            pass
        except AnsibleError:  # raised by Ansible itself in this worker (a task `timeout:`): its own handling
            raise
        except Exception as exc:  # the module crashed: report it as a failed task, as a module process would
            return {"failed": True, "msg": "%s crashed in the controller process: %s" % (name, exc), "exception": traceback.format_exc()}
        finally:
            sys.stdout, sys.stderr = stdout, stderr
        if not recorded:
            return {"failed": True, "msg": "%s returned no result" % name}
        # Through the same encoder and decoder as a module process's output, so the result carries
        # the same (untrusted) types.
        encoded = json.dumps(recorded[-1], cls=get_module_encoder(PROFILE, Direction.MODULE_TO_CONTROLLER))
        data = self._parse_returned_data({"stdout": encoded}, PROFILE)
        remove_internal_keys(data)
        return data
