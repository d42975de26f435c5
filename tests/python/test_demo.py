"""`wbpf demo --json` on a short run: real workload processes, real eBPF probe, real gateway.
It must find the injected far-memory stalls (recall ≥ 0.99), keep little else
(precision ≥ 0.95) and export at most 5 % of the bytes it received."""

import json
import subprocess

from conftest import BIN_DIR

REQUIRED_KEYS = {
    "traces_received",
    "traces_exported",
    "triggers",
    "injected_edge_cases",
    "edge_cases_exported",
    "bytes_received",
    "bytes_exported",
}


def test_demo_json_meets_recall_precision_and_bytes_targets(tmp_path):
    result = subprocess.run(
        [
            str(BIN_DIR / "wbpf"),
            "demo",
            "--json",
            "--duration",
            "12s",
            "--fault-rate",
            "0.02",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert REQUIRED_KEYS <= summary.keys()

    assert summary["requests"] > 1000
    assert summary["injected_edge_cases"] >= 20, summary
    assert summary["recall"] >= 0.99, summary
    assert summary["precision"] >= 0.95, summary
    assert summary["bytes_exported"] <= 0.05 * summary["bytes_received"], summary
    assert summary["traces_exported"] < summary["traces_received"]
