"""API key, CORS, security headers, load shedding and time limits."""

import time

import httpx
import pytest
from prometheus_client import REGISTRY

from harness.bodies import png
from harness.server import post_slowly, requests_in_flight, running_server, wait_until
from tests.service.conftest import make_client
from tests.service.imaging import digit_on_paper


@pytest.fixture
def keyed(model_dir):
    with make_client(model_dir, api_key="s3cret") as client:
        yield client


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"X-API-Key": "s3cre"}, {"Authorization": "Basic s3cret"}]
)
def test_api_key_refusals_all_look_the_same_and_each_is_counted(keyed, headers):
    before = REGISTRY.get_sample_value("vae_rejections_total", {"reason": "unauthorized"}) or 0.0
    response = keyed.get("/model", headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "missing or invalid API key"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert REGISTRY.get_sample_value("vae_rejections_total", {"reason": "unauthorized"}) - before == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("Authorization", "Bearer s3cre")], id="a prefix"),
        pytest.param([("Authorization", "Bearer 3cret")], id="a suffix"),
        pytest.param([("Authorization", "Bearer s3cretx")], id="the key and more"),
        pytest.param([("Authorization", "Bearer S3CRET")], id="another case"),
        pytest.param([("X-API-Key", "")], id="empty X-API-Key"),
        pytest.param([("Authorization", "Bearer ")], id="empty bearer"),
        pytest.param([("Authorization", "s3cret")], id="no scheme"),
        pytest.param([("Authorization", "Bearer s3cret"), ("X-API-Key", "wrong")], id="right then wrong"),
        pytest.param([("X-API-Key", "wrong"), ("Authorization", "Bearer s3cret")], id="wrong then right"),
        pytest.param([("X-API-Key", "s3cret"), ("X-API-Key", "s3cre")], id="the header twice, once wrong"),
        pytest.param([("Authorization", b"Bearer s3cr\xc3\xa9t")], id="non-ASCII bytes"),
        pytest.param([("X-API-Key", b"s3cret\xff")], id="the key and a byte over 127"),
    ],
)
def test_api_key_refused_however_near_the_offered_key_is(keyed, headers):
    response = keyed.get("/model", headers=headers)
    assert response.status_code == 401 and response.json()["detail"] == "missing or invalid API key"


@pytest.mark.parametrize("query", ["api_key=s3cret", "key=s3cret", "token=s3cret", "access_token=s3cret"])
def test_a_key_in_the_query_string_is_not_a_key(keyed, query):
    assert keyed.get(f"/model?{query}").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        [("Authorization", "Bearer s3cret")],
        [("X-API-Key", "s3cret")],
        [("authorization", "bearer s3cret")],  # the scheme's case is free, as RFC 9110 says
        [("Authorization", "Bearer s3cret"), ("X-API-Key", "s3cret")],
    ],
)
def test_api_key_accepted_either_way(keyed, headers):
    answer = keyed.get("/model", headers=headers)
    assert answer.status_code == 200 and answer.json()["latent_size"] == 2


def test_exactly_the_documented_routes_need_no_key(model_dir):
    """Every declared route is tried without a key: the ones that answer are the README's list."""
    from service.http.app import routes

    documented = {"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/docs", "/openapi.json", "/"}
    with make_client(model_dir, api_key="s3cret") as client:
        paths = {route.path for route in routes()} | {"/docs", "/openapi.json", "/", "/explorer/", "/metrics"}
        open_paths = set()
        for path in paths:
            concrete = path.replace("{model}", "model").replace("{model_name}", "model")
            for method in ("GET", "POST"):
                if client.request(method, concrete).status_code != 401:
                    open_paths.add(path)
        assert open_paths == documented | {"/explorer/"}
        assert client.get("/docs/assets/swagger-ui.css").status_code == 200


def test_probes_need_no_key(keyed):
    assert keyed.get("/healthz").status_code == 200
    ready = keyed.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


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


def test_a_browsers_preflight_needs_no_key_but_the_call_after_it_does(model_dir):
    """Browsers send the OPTIONS preflight without credentials, so it must pass the key check."""
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    with make_client(model_dir, api_key="s3cret", cors_origins=["https://app.example"]) as client:
        answered = client.options("/decode", headers=preflight)
        assert answered.status_code == 200
        assert answered.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in answered.headers["access-control-allow-headers"].lower()
        call = client.post("/decode", json={"z": [[0.0, 0.0]]}, headers={"Origin": "https://app.example"})
        assert call.status_code == 401


def test_cors_origins_from_a_comma_separated_variable(monkeypatch):
    from service.settings import Settings

    monkeypatch.setenv("VAE_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


def test_overload_is_shed_at_once_and_readiness_stays_honest(model_dir):
    with running_server(model_dir, VAE_MAX_IN_FLIGHT="1") as server:
        result = {}
        thread = post_slowly(server.url, png(digit_on_paper()), 1.5, result)
        wait_until(lambda: requests_in_flight(server.url) == 1, "the slow upload under way")
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
