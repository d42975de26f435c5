"""`wbpf demo --json --compare` on a short run: real workload processes, real eBPF probe, real
gateway. It must find the injected far-memory stalls (recall ≥ 0.99), keep little else
(precision ≥ 0.95) and export at most 5 % of the bytes it received. On the same stream, head
sampling at 1 % and a tail latency policy run in shadow: head keeps about 1 % of traces and
catches about 1 % of the stalls, tail catches the stalls (each makes its request slow end to
end), and the comparison chart is written."""

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
            "--compare",
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

    compare = summary["compare"]
    modes = {m["mode"]: m for m in compare["modes"]}
    assert set(modes) == {"head", "tail", "triggered"}
    seen = compare["edge_cases_seen"]
    assert seen == summary["injected_edge_cases"], compare
    assert compare["events_dropped"] == 0, compare
    assert modes["triggered"]["exporting"]
    assert modes["triggered"]["edge_cases_captured"] >= 0.99 * seen, compare
    assert modes["tail"]["edge_cases_captured"] >= 0.95 * seen, compare
    head_share = modes["head"]["traces_kept"] / compare["traces_seen"]
    assert 0.002 <= head_share <= 0.03, compare
    assert modes["head"]["edge_cases_captured"] <= max(3, 0.1 * seen), compare
    # The shadow's triggered figures are what the gateway really exported.
    assert modes["triggered"]["bytes_kept"] == summary["bytes_exported"], compare

    svg = (tmp_path / "compare.svg").read_text()
    assert svg.startswith("<svg") and "triggered" in svg
