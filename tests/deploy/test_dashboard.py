"""deploy/grafana/vae-service.json: Grafana's schema (grafana-foundation-sdk's models) reads every
field it holds, each query parses as PromQL (Prometheus' parser), and each metric it charts is one
the service really exposes, read from a real /metrics page."""

import json
import math
import re

import promql_parser
import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard
from prometheus_client.parser import text_string_to_metric_families

from harness.bodies import png
from harness.prometheus import panel_queries, scraped_run
from service.settings import Settings
from tests.conftest import REPO
from tests.service.conftest import served_by
from tests.service.imaging import digit_on_paper
from training.data import load_dataset

DASHBOARD = json.loads((REPO / "deploy" / "grafana" / "vae-service.json").read_text())
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$model": ".*"}


def unread(written: object, read: object, path: str = "") -> list[str]:
    """The keys of written that Grafana's model dropped when it read them (a misspelt field)."""
    if isinstance(written, dict):
        return [
            missing
            for key, value in written.items()
            for missing in ([f"{path}.{key}"] if key not in read else unread(value, read[key], f"{path}.{key}"))
        ]
    if isinstance(written, list):
        assert len(written) == len(read), path
        return [
            missing for index, item in enumerate(written) for missing in unread(item, read[index], f"{path}[{index}]")
        ]
    return []


def queries() -> list[str]:
    return [target["expr"] for panel in DASHBOARD["panels"] for target in panel["targets"]]


def test_grafanas_schema_reads_every_field():
    read = json.loads(json.dumps(Dashboard.from_json(DASHBOARD), cls=JSONEncoder))
    assert unread(DASHBOARD, read) == []
    assert {panel["id"] for panel in DASHBOARD["panels"]} == set(range(1, len(DASHBOARD["panels"]) + 1))


def test_every_query_is_promql_on_metrics_the_service_exposes():
    with served_by(Settings()) as client:  # traffic first, so that the labelled series exist
        client.post("/encode", content=png(digit_on_paper()), headers={"Content-Type": "image/png"})
        client.post("/decode", json={"z": [0, 0]})
        page = client.get("/metrics").text
    exposed = {family.name for family in text_string_to_metric_families(page)}
    charted = set()
    for query in queries():
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        promql_parser.parse(query)
        charted |= {re.sub(r"_(bucket|sum|count|total)$", "", name) for name in re.findall(r"\bvae_\w+", query)}
    assert charted - exposed == set()
    assert {"vae_requests", "vae_novelty_percentile", "vae_batch_size", "vae_inference_seconds"} <= charted


@pytest.mark.slow
def test_every_panel_charts_a_real_run_as_prometheus_evaluates_it(sample_data_dir):
    """Each query of each panel, evaluated by a real Prometheus that scraped vae-serve under traffic,
    has data: a query that parses but names a label the series lack, divides by a series that never
    exists or shows "No data" where it should show 0 fails here. (A series idle over the window is
    NaN, a gap in Grafana's chart, as it should be.)"""
    with scraped_run(load_dataset(sample_data_dir).test.images, seconds=15) as (prometheus, _, end):
        empty = []
        for panel in DASHBOARD["panels"]:
            for _, expr in panel_queries(panel):
                values = [float(sample["value"][1]) for sample in prometheus.query(expr, at=end)]
                if not any(math.isfinite(value) for value in values):
                    empty.append((panel["title"], expr, values))
    assert empty == []
