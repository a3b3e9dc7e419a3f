"""One rule for parameters: from the query string or the JSON body, never ignored, never guessed."""

import io

import pytest
from PIL import Image

from harness.bodies import png
from tests.service.conftest import assert_problem
from tests.service.imaging import digit_on_paper

JSON = {"Content-Type": "application/json"}


def test_post_sample_takes_its_parameters_from_the_query(client):
    response = client.post("/sample?n=4&seed=3", headers={"Accept": "application/json"})
    body = response.json()
    assert response.status_code == 200 and len(body["images"]) == 4 and body["seed"] == 3


def test_post_sample_takes_them_from_the_body_too_and_both_agree(client):
    by_query = client.post("/sample?n=2&seed=5", headers={"Accept": "application/json"}).json()
    by_body = client.post("/sample", json={"n": 2, "seed": 5}, headers={"Accept": "application/json"}).json()
    assert by_query["images"] == by_body["images"]


def test_a_parameter_in_both_places_is_a_conflict(client):
    assert_problem(client.post("/sample?n=2", json={"n": 3}), 422, "'n' is given in both the query string and the body")


def test_n_over_the_limit_is_refused_wherever_it_comes_from(client):
    assert_problem(client.post("/sample?n=999"), 422, "n=999 is over the limit")


def test_upscale_in_a_decode_body_is_used(client):
    response = client.post("/decode", json={"z": [0, 0], "upscale": 3})
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (84, 84)


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "fragment"),
    [
        ("post", "/sample", {"json": {"seeed": 3}}, "body.seeed: unknown field; this route takes n, seed"),
        ("post", "/decode", {"json": {"z": [0, 0], "scale": 2}}, "body.scale: unknown field"),
        ("get", "/sample?n=2&colour=red", {}, "unknown query parameter 'colour'"),
        ("post", "/decode?verbose=1", {"json": {"z": [0, 0]}}, "unknown query parameter 'verbose'"),
        ("post", "/encode?format=png", {"content": b"x", "headers": {"Content-Type": "image/png"}}, "'format'"),
        ("get", "/healthz?deep=1", {}, "this route takes no parameters"),
        ("get", "/model?x=1", {}, "this route takes no parameters"),
        ("get", "/sample?n=2&n=3", {}, "'n' is given more than once"),
        ("post", "/decode?z=1", {"json": {"z": [0, 0]}}, "'z' belongs in the JSON body"),
    ],
)
def test_nothing_is_silently_ignored(client, method, url, kwargs, fragment):
    assert_problem(getattr(client, method)(url, **kwargs), 422, fragment)


def test_a_json_body_on_get_sample_says_to_use_post(client):
    response = client.request("GET", "/sample", content=b'{"n": 2}', headers=JSON)
    assert_problem(response, 422, "use POST /sample")


def test_a_form_field_beside_the_file_is_named(client):
    files = {"file": ("d.png", png(digit_on_paper()), "image/png")}
    assert_problem(client.post("/encode", files=files, data={"invert": "no"}), 422, "form field 'invert' is not read")


def test_random_seeds_fit_in_a_javascript_number(client):
    seeds = [int(client.get("/sample").headers["x-seed"]) for _ in range(20)]
    assert all(0 <= seed <= 2**53 - 1 for seed in seeds)


def test_larger_seeds_are_refused(client):
    assert_problem(client.post("/sample", json={"seed": 2**53}), 422, "less than or equal to 9007199254740991")


@pytest.mark.parametrize("media_type", ["image/jpg", "image/pjpeg", "image/x-png"])
def test_common_image_type_names_are_accepted(client, media_type):
    picture = png(digit_on_paper())
    named = client.post("/encode", content=picture, headers={"Content-Type": media_type})
    assert named.status_code == 200
    as_png = client.post("/encode", content=picture, headers={"Content-Type": "image/png"})
    assert named.json()["mu"] == as_png.json()["mu"]


@pytest.mark.parametrize("media_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_a_json_route_says_to_send_json(client, media_type):
    response = client.post("/decode", content=b"z=1,2", headers={"Content-Type": media_type})
    assert_problem(response, 415, "send the body as application/json")


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_head(client, path):
    response = client.head(path)
    assert response.status_code == 200 and response.content == b""


def test_a_wrong_method_says_which_to_use(client):
    assert_problem(client.get("/decode"), 405, "GET /decode is not allowed; use POST")
