# -*- coding: utf-8 -*-
# Copyright (c) 2026 aiinfra.cluster contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Connection options shared by every module that talks to the Kubernetes API (and the
    descriptions of the check_mode/diff_mode attributes those modules declare)."""

    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file, several paths separated by V(:) or given as a list, or the kubeconfig itself as a dictionary.
      - Several files are merged as C(kubectl) merges C(KUBECONFIG); the first file that defines a cluster, user, context
        or current-context wins, and relative paths in a file are relative to that file's directory. Every file named here must exist.
      - Defaults to C(KUBECONFIG) (files that do not exist are skipped, as C(kubectl) does), then C(~/.kube/config),
        then the in-cluster service account.
      - Users with C(token), C(tokenFile), client certificates, C(exec) credential plugins (re-run before
        C(status.expirationTimestamp) and once after a 401; C(provideClusterInfo) honoured; C(interactiveMode=Always) is refused
        because a module has no terminal) and the C(oidc) C(auth-provider) (through the Python package C(kubernetes), which
        must then be installed) are supported. C(gcp) and C(azure) auth-providers fail naming the credential plugin to use instead.
      - The user's C(as), C(as-uid), C(as-groups) and C(as-user-extra) impersonate as with C(kubectl); the cluster's
        C(tls-server-name) and C(proxy-url) are honoured.
      - Can also be set with the E(K8S_AUTH_KUBECONFIG) environment variable.
    type: raw
  context:
    description:
      - The kubeconfig context to use. Defaults to the kubeconfig's current-context.
      - Can also be set with the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - URL of the API server. Overrides the kubeconfig's server.
      - Can also be set with the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - Bearer token for the API server. Can also be set with E(K8S_AUTH_API_KEY).
      - Replaces the kubeconfig user's credentials (as C(kubectl --token) does), so a client certificate in the
        kubeconfig never takes precedence over it.
    type: str
  username:
    description:
      - User name for basic authentication. Can also be set with E(K8S_AUTH_USERNAME).
    type: str
  password:
    description:
      - Password for basic authentication. Can also be set with E(K8S_AUTH_PASSWORD).
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate. Defaults to the kubeconfig's setting (verify).
      - Can also be set with E(K8S_AUTH_VERIFY_SSL).
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - CA certificate file that signed the API server's certificate. Can also be set with E(K8S_AUTH_SSL_CA_CERT).
    type: path
    aliases: [ssl_ca_cert]
  client_cert:
    description:
      - Client certificate file for TLS authentication. Can also be set with E(K8S_AUTH_CERT_FILE).
    type: path
    aliases: [cert_file]
  client_key:
    description:
      - Client key file for TLS authentication. Can also be set with E(K8S_AUTH_KEY_FILE).
    type: path
    aliases: [key_file]
  proxy:
    description:
      - Proxy through which to reach the API server, V(http://[user:password@]host:port) (HTTP CONNECT) or
        V(socks5://[user:password@]host:port). Overrides the kubeconfig cluster's C(proxy-url).
      - Without this option or a C(proxy-url), E(HTTPS_PROXY) (E(HTTP_PROXY) for an http server) and E(NO_PROXY) are
        honoured as C(kubectl) honours them; localhost and loopback addresses are never proxied.
      - Can also be set with E(K8S_AUTH_PROXY).
    type: str
  impersonate_user:
    description:
      - User to impersonate, also with the in-cluster service account. Overrides the kubeconfig user's C(as).
      - Can also be set with E(K8S_AUTH_IMPERSONATE_USER).
    type: str
  impersonate_groups:
    description:
      - Groups to impersonate; each is sent as its own C(Impersonate-Group) header. Needs O(impersonate_user).
        Overrides the kubeconfig user's C(as-groups).
      - Can also be set with E(K8S_AUTH_IMPERSONATE_GROUPS).
    type: list
    elements: str
  impersonate_uid:
    description:
      - UID to impersonate (C(Impersonate-Uid)). Needs O(impersonate_user). Overrides the kubeconfig user's C(as-uid).
      - Can also be set with E(K8S_AUTH_IMPERSONATE_UID).
    type: str
    version_added: 1.1.0
  impersonate_extra:
    description:
      - Extra fields of the impersonated user (C(Impersonate-Extra-<key>)), a mapping of key to a list of values.
        Needs O(impersonate_user). Overrides the kubeconfig user's C(as-user-extra).
    type: dict
    version_added: 1.1.0
  request_timeout:
    description:
      - Seconds to wait for one API response.
    type: int
    default: 30
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
notes:
  - Option names and C(K8S_AUTH_*) variables are those of M(kubernetes.core.k8s), so the same AWX credential serves both.
  - Requests that fail with 429, 5xx or a dropped connection are retried with backoff; validation errors are not.
"""
