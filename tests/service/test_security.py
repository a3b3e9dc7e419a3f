"""API key, CORS, security headers, load shedding and time limits."""

import time

import httpx
import pytest

from harness.bodies import png
from harness.server import post_slowly, running_server
from tests.service.conftest import make_client
from tests.service.imaging import digit_on_paper


@pytest.fixture
def keyed(model_dir):
    with make_client(model_dir, api_key="s3cret") as client:
        yield client


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cre"}, {"Authorization": "Basic s3cret"}]
)
def test_api_key_refusals_all_look_the_same(keyed, headers):
    response = keyed.get("/model", headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "missing or invalid API key"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer s3cret"}, {"X-API-Key": "s3cret"}])
def test_api_key_accepted_either_way(keyed, headers):
    assert keyed.get("/model", headers=headers).status_code == 200


def test_probes_need_no_key(keyed):
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code == 200


def test_a_scraper_reads_metrics_with_the_metrics_token_and_nothing_else(model_dir):
    with make_client(model_dir, api_key="s3cret", metrics_token="scrape-only") as client:
        scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-only"})
        assert scraped.status_code == 200 and "vae_requests_total" in scraped.text
        assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-onl"}).status_code == 401
        # the token opens /metrics alone
        assert client.get("/model", headers={"Authorization": "Bearer scrape-only"}).status_code == 401
        assert client.get("/models", headers={"X-API-Key": "scrape-only"}).status_code == 401


def test_security_headers_and_closed_cors(client):
    response = client.get("/healthz", headers={"Origin": "https://elsewhere.example"})
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "access-control-allow-origin" not in response.headers


def test_cors_opens_to_configured_origins(model_dir):
    with make_client(model_dir, cors_origins=["https://app.example"]) as client:
        allowed = client.get("/healthz", headers={"Origin": "https://app.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_cors_origins_from_a_comma_separated_variable(monkeypatch):
    from service.settings import Settings

    monkeypatch.setenv("VAE_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


def test_overload_is_shed_at_once_and_readiness_stays_honest(model_dir):
    with running_server(model_dir, VAE_MAX_IN_FLIGHT="1") as server:
        result = {}
        thread = post_slowly(server.url, png(digit_on_paper()), 1.5, result)
        time.sleep(0.4)
        started = time.monotonic()
        shed = httpx.post(f"{server.url}/encode", content=b"x", headers={"Content-Type": "image/png"})
        assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
        assert time.monotonic() - started < 0.5
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        thread.join()
        assert result["response"].status_code == 200


def test_slow_upload_is_cut_off(model_dir):
    with running_server(model_dir, VAE_REQUEST_TIMEOUT_S="0.5") as server:
        result = {}
        post_slowly(server.url, png(digit_on_paper()), 3, result).join()
        response = result["response"]
        assert response.status_code == 408
        assert "within 0.5 s" in response.json()["detail"]
