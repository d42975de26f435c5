"""`wbpf workload` by hand: the three services run until a signal, then leave nothing behind
(its pool file under /dev/shm and its figures belong to the run)."""

import signal
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import BIN_DIR, wait_for

POOL = Path("/dev/shm/wbpf-pool")
STATS = Path(tempfile.gettempdir()) / "wbpf-workload-stats.json"


def test_workload_stopped_by_ctrl_c_removes_its_pool_and_figures(tmp_path):
    log = open(tmp_path / "workload.log", "w")
    command = [str(BIN_DIR / "wbpf"), "workload", "--no-tracing", "--rate", "20",
               "--otlp-endpoint", "http://127.0.0.1:1"]
    workload = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(POOL.exists, timeout=30), "the workload made no pool"
        time.sleep(1)  # Requests flow through the pool.
        workload.send_signal(signal.SIGINT)
        assert workload.wait(timeout=30) == 0, (tmp_path / "workload.log").read_text()[-2000:]
        assert not POOL.exists(), "the pool file outlived the workload"
        assert not STATS.exists(), "the figures outlived the workload"
    finally:
        if workload.poll() is None:
            workload.kill()
        log.close()
