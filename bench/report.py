"""What the benchmark scripts publish: SVG line charts, drawn with matplotlib (bench/run.sh
installs it; without it no chart is written and the scripts say so), and the generated parts
of BENCHMARKS.md."""

import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def line_chart(path, panels, xlabel, log_y=False):
    """Writes one row of panels to `path`. `panels` lists (y label, series); a series maps a
    line's label to its (x, y) points, drawn in the order given, in the same colour in every
    panel. `log_y` is one flag for all panels or one per panel. Returns whether it wrote."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.5), squeeze=False)
    if isinstance(log_y, bool):
        log_y = [log_y] * len(panels)
    colours = {}
    for _, series in panels:
        for label in series:
            colours.setdefault(label, f"C{len(colours)}")
    for ax, (ylabel, series), log in zip(axes[0], panels, log_y):
        for label, points in series.items():
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label,
                    color=colours[label])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_benchmarks(script, command, text):
    """Replaces what `script` generated in BENCHMARKS.md, between its markers, with `text`
    headed by the command that produced it and today's date."""
    begin, end = f"<!-- {script}: begin -->", f"<!-- {script}: end -->"
    document = BENCHMARKS.read_text()
    if begin not in document or end not in document:
        raise SystemExit(f"{BENCHMARKS} lacks the markers {begin} / {end}")
    head, rest = document.split(begin, 1)
    _, tail = rest.split(end, 1)
    stamp = f"`{command}`, {time.strftime('%Y-%m-%d')}:\n\n"
    BENCHMARKS.write_text(head + begin + "\n" + stamp + text + end + tail)
