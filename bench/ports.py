"""Loopback ports for the benchmark scripts: free ones to listen on, and waiting until
something listens."""

import socket
import time

_GIVEN = set()


def free_port():
    """A loopback port free right now and not given before by this process: the kernel can
    hand the same free port to two calls in a row, and two listeners would then clash."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def wait_for_port(port, timeout=60, proc=None):
    """Returns once something listens on `port`; raises if `proc` exits or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:2]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
