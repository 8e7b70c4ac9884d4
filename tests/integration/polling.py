"""Polling for what a controller writes a moment later (shared by the integration tests)."""

import time


def wait_until(what, check, timeout=60, interval=0.5):
    """check()'s first truthy value within timeout seconds; AssertionError naming `what` otherwise."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("%s not within %ss" % (what, timeout))
