"""The binaries under test as processes: free loopback ports, waiting until a process listens,
and a process that logs to a file, can be killed and started again, and is stopped with SIGTERM
(SIGKILL only when it does not exit in time). The gateway fixtures and the peers share it."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

BIN_DIR = Path(os.environ.get("WBPF_BIN_DIR", "/var/tmp/wbpf-target/release"))
STOP_GRACE_S = 30.0
LOG_TAIL_CHARS = 4000


_GIVEN: set[int] = set()


def free_port() -> int:
    """A loopback port free right now and not given before in this test run: the kernel can
    hand the same free port to two calls in a row, and one process's two listeners then clash."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    name = Path(proc.args[0]).name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{name} did not listen on {port}")


class LoggedProcess:
    """`command` running with its output in `<directory>/<name>.log`; after `kill` or `stop`,
    `start` runs it again, the n-th start logging to `<name>-<n>.log`."""

    def __init__(
        self,
        directory: Path,
        name: str,
        command: list[str],
        ports: list[int],
        timeout: float = 30.0,
    ):
        """Starts `command` and waits up to `timeout` seconds for it to listen on each port."""
        self.directory = directory
        self.name = name
        self.command = command
        self.ports = ports
        self.timeout = timeout
        self.starts = 0
        self.start()

    def start(self) -> None:
        """Runs the command; if it does not listen on its ports, stops it and raises with the
        end of its log."""
        self.starts += 1
        suffix = "" if self.starts == 1 else f"-{self.starts}"
        self.log_path = self.directory / f"{self.name}{suffix}.log"
        # The child keeps its own descriptor of the log: ours can close at once.
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        try:
            for port in self.ports:
                wait_listening(port, self.proc, self.timeout)
        except Exception as error:
            self.stop()
            tail = self.log_path.read_text()[-LOG_TAIL_CHARS:]
            raise RuntimeError(f"{self.name} did not start ({error}):\n{tail}") from error

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the process has not exited within `STOP_GRACE_S`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
