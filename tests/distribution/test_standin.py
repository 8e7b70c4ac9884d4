"""tools/kind/standin: the program that stands in for upstream images the offline kind cluster
cannot build. Built with its build.sh and run here: it must answer every probe kubelet may send
(HTTP, HTTPS, gRPC health over h2c) on the ports it is given, skip a port it cannot bind, leave
with 0 on SIGTERM, and exit 0 at once in exit mode."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "tools", "kind", "standin", "build.sh")
# grpc.health.v1.HealthCheckResponse{status: SERVING} in one uncompressed gRPC message.
SERVING = b"\x00\x00\x00\x00\x02\x08\x01"


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    if shutil.which("go") is None:
        pytest.skip("no go toolchain on PATH")
    env = dict(os.environ)
    env.setdefault("HOME", str(tmp_path_factory.getbasetemp()))
    out = tmp_path_factory.mktemp("standin") / "bin"
    proc = subprocess.run([BUILD, str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")
    path = proc.stdout.decode().strip()
    assert path == str(out / "standin") and os.access(path, os.X_OK), path
    # A second run builds nothing and gives the same path.
    again = subprocess.run([BUILD, str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=True)
    assert again.stdout.decode().strip() == path and not again.stderr
    return path


def free_ports(count):
    socks = [socket.socket() for dummy in range(count)]
    try:
        for sock in socks:
            sock.bind(("", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def wait_listening(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "standin exited with %s" % proc.returncode
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on port %d" % port)


def start(binary, log_path, ports, *args):
    env = dict(os.environ, STANDIN_NAME="example.io/upstream:v1", STANDIN_PORTS=",".join(str(p) for p in ports), STANDIN_DEFAULT_PORTS="")
    with open(str(log_path), "wb") as log:
        return subprocess.Popen([binary] + list(args), env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def server(binary, tmp_path):
    ports = free_ports(2)
    log = tmp_path / "standin.log"
    # Started with arguments of the image it stands in for: they must be ignored.
    proc = start(binary, log, ports, "--model-dir=/mnt/models", "serve")
    try:
        for port in ports:
            wait_listening(port, proc)
        yield proc, ports, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def get(url, context=None):
    with urllib.request.urlopen(url, timeout=5, context=context) as resp:
        return resp.status, resp.read()


def unverified():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_http_and_https_on_every_port(server):
    proc, ports, log = server
    for port in ports:
        assert get("http://127.0.0.1:%d/healthz" % port) == (200, b"ok")
        assert get("http://127.0.0.1:%d/any/path?x=1" % port) == (200, b"ok")
        assert get("https://127.0.0.1:%d/readyz" % port, unverified()) == (200, b"ok")
    # A TCP probe (connect, then close) does not disturb the server.
    socket.create_connection(("127.0.0.1", ports[0]), timeout=2).close()
    assert get("http://127.0.0.1:%d/" % ports[0]) == (200, b"ok")
    assert proc.poll() is None
    text = log.read_text()
    assert "example.io/upstream:v1" in text and "--model-dir=/mnt/models" in text


def test_tls_offers_h2_by_alpn(server):
    ports = server[1]
    context = unverified()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", ports[1]), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "h2"
            # The certificate is one (self-signed), made at start.
            assert tls.getpeercert(binary_form=True)


def curl_grpc(url, tmp_path, *extra):
    """POST an empty gRPC request (a 5-byte frame) over HTTP/2; return (dumped headers and
    trailers, body)."""
    version = subprocess.run(["curl", "-V"], stdout=subprocess.PIPE, check=False).stdout.decode()
    if "HTTP2" not in version:
        pytest.skip("curl without HTTP/2")
    headers, body = tmp_path / "headers", tmp_path / "body"
    proc = subprocess.run(
        ["curl", "-sS", "--max-time", "5", "-H", "content-type: application/grpc", "-H", "te: trailers",
         "--data-binary", "@-", "-D", str(headers), "-o", str(body)] + list(extra) + [url],
        input=b"\x00\x00\x00\x00\x00", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, check=False,
    )
    assert proc.returncode == 0, proc.stdout.decode("utf-8", "replace")
    return headers.read_text().lower(), body.read_bytes()


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl")
def test_grpc_health_check_over_h2c_and_tls(server, tmp_path):
    ports = server[1]
    for url, extra in (
        ("http://127.0.0.1:%d/grpc.health.v1.Health/Check" % ports[0], ["--http2-prior-knowledge"]),
        ("https://127.0.0.1:%d/grpc.health.v1.Health/Check" % ports[1], ["--http2", "-k"]),
    ):
        headers, body = curl_grpc(url, tmp_path, *extra)
        assert headers.startswith("http/2 200"), headers
        assert "content-type: application/grpc" in headers, headers
        # curl writes the trailers after the headers in the dump.
        assert "grpc-status: 0" in headers, headers
        assert body == SERVING
    # Another gRPC method: OK, no message.
    headers, body = curl_grpc("http://127.0.0.1:%d/example.v1.Model/Predict" % ports[1], tmp_path, "--http2-prior-knowledge")
    assert "grpc-status: 0" in headers and body == b""


def test_sigterm_exits_zero_promptly(server):
    proc = server[0]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=2) == 0


def test_busy_port_is_skipped_not_fatal(binary, tmp_path):
    busy = socket.socket()
    busy.bind(("", 0))
    busy.listen(1)
    try:
        port = free_ports(1)[0]
        log = tmp_path / "standin.log"
        proc = start(binary, log, [busy.getsockname()[1], port])
        try:
            wait_listening(port, proc)
            assert get("http://127.0.0.1:%d/" % port) == (200, b"ok")
            assert "port %d skipped" % busy.getsockname()[1] in log.read_text()
        finally:
            proc.kill()
            proc.wait()
    finally:
        busy.close()


@pytest.mark.parametrize("args, env", [
    (["--webhook"], {"STANDIN_MODE": "exit"}),
    (["download", "s3://bucket/model", "/mnt/models"], {"STANDIN_EXIT_WHEN": "init,download"}),
])
def test_exit_mode_exits_zero_at_once(binary, args, env):
    port = free_ports(1)[0]
    started = time.monotonic()
    proc = subprocess.run(
        [binary] + args, env=dict(os.environ, STANDIN_PORTS=str(port), **env), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=10, check=False,
    )
    assert proc.returncode == 0, proc.stdout
    assert time.monotonic() - started < 2


def test_exit_when_other_command_keeps_serving(binary, tmp_path):
    port = free_ports(1)[0]
    env = dict(os.environ, STANDIN_PORTS=str(port), STANDIN_DEFAULT_PORTS="", STANDIN_EXIT_WHEN="init,download")
    with open(str(tmp_path / "log"), "wb") as log:
        proc = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, proc)
    finally:
        proc.kill()
        proc.wait()
