"""deploy/grafana/vae-service.json drawn from a real run, for docs/dashboard.png: vae-serve under a
minute of mixed traffic, scraped every second by Debian's Prometheus, and each panel's own queries
evaluated by it over the run, laid out on the dashboard's grid with its titles and legends. Grafana
itself installs from no registry reachable here, so matplotlib draws what its panels would.

    python -m benchmarks.dashboard [--seconds 60] [--out docs/dashboard.png]
"""

import argparse
import math
import re
from pathlib import Path

from matplotlib.figure import Figure

from harness.prometheus import DASHBOARD, panel_queries, scraped_run
from training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent
GRID_COLUMNS = 24  # Grafana's grid: 24 columns, rows of about 30 pixels


def legend(template: str, labels: dict) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda match: labels.get(match.group(1), ""), template) or "value"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.png")
    args = parser.parse_args()
    panels = DASHBOARD["panels"]
    rows = max(panel["gridPos"]["y"] + panel["gridPos"]["h"] for panel in panels)
    figure = Figure(figsize=(16, rows * 0.42), layout="constrained")
    grid = figure.add_gridspec(rows, GRID_COLUMNS)
    digits = load_dataset(ROOT / "tests" / "data" / "mnist-sample").test.images
    with scraped_run(digits, args.seconds) as (prometheus, start, end):
        for panel in panels:
            place = panel["gridPos"]
            axes = figure.add_subplot(grid[place["y"] : place["y"] + place["h"], place["x"] : place["x"] + place["w"]])
            axes.set_title(panel["title"], fontsize=9, loc="left")
            for template, expr in panel_queries(panel):
                for series in prometheus.query_range(expr, start, end):
                    points = [(float(t) - start, float(v)) for t, v in series["values"] if math.isfinite(float(v))]
                    if points:
                        axes.plot(*zip(*points, strict=True), linewidth=1, label=legend(template, series["metric"]))
            axes.set_xlabel("seconds into the run", fontsize=7)
            axes.set_ylabel(panel["fieldConfig"]["defaults"].get("unit", ""), fontsize=7)
            axes.tick_params(labelsize=7)
            if axes.lines:
                axes.legend(fontsize=6, loc="upper left", ncols=2)
    figure.suptitle(f"{DASHBOARD['title']}: vae-serve under mixed traffic, scraped by Prometheus", fontsize=11)
    figure.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
