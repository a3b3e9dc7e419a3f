"""Every endpoint, each input form, and each class of error, through FastAPI's test client."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from harness.bodies import encoded, png
from service.core.verified import VerifiedModel
from tests.conftest import BUNDLED_MODEL
from tests.service.conftest import PROBLEM, assert_problem, make_client
from tests.service.imaging import digit_on_paper, png_with_header
from training.data import load_dataset


@pytest.fixture(scope="module")
def digit() -> bytes:
    return png(digit_on_paper())


def test_probes_and_description(client, model_dir):
    assert client.get("/healthz").json() == {"status": "alive"}
    description = json.loads((model_dir / "model.json").read_text())
    served = {model_dir.name: description["id"]}
    assert client.get("/readyz").json() == {"status": "ready", "model_id": description["id"], "models": served}
    assert client.get("/model").json() == description


def test_not_ready_before_the_model_is_loaded(model_dir):
    client = make_client(model_dir)  # not entered: the lifespan has not run
    assert_problem(client.get("/readyz"), 503, "not ready")
    assert_problem(client.post("/decode", json={"z": [0, 0]}), 503, "not loaded")


def test_encode_raw_body_and_multipart_agree(client, digit):
    raw = client.post("/encode", content=digit, headers={"Content-Type": "image/png"})
    form = client.post("/encode", files={"file": ("digit.png", digit, "image/png")})
    assert raw.status_code == form.status_code == 200
    assert raw.json() == form.json()
    body = raw.json()
    assert body["latent_size"] == len(body["mu"]) == len(body["sigma"]) == 2
    assert all(s > 0 for s in body["sigma"])


def test_encode_batch_is_one_list_in_upload_order(client, digit):
    other = png(np.fliplr(digit_on_paper()).copy())
    response = client.post(
        "/encode/batch", files=[("file", ("a.png", digit, "image/png")), ("file", ("b.png", other, "image/png"))]
    )
    assert response.status_code == 200
    items = response.json()["items"]
    assert [item["filename"] for item in items] == ["a.png", "b.png"]
    single = client.post("/encode", content=other, headers={"Content-Type": "image/png"}).json()
    np.testing.assert_allclose(items[1]["mu"], single["mu"], atol=1e-6)


def test_a_picture_gets_the_same_model_input_alone_and_in_a_batch(client, digit, sample_data_dir):
    mnist = load_dataset(sample_data_dir).test.images[:3]
    noisy = np.clip(mnist[2] + np.random.default_rng(0).normal(0, 40, mnist[2].shape), 0, 255).astype(np.uint8)
    pictures = [
        png(mnist[0]),
        png(255 - mnist[1]),  # dark ink on light paper: inverted, unlike its neighbours
        png(noisy),  # a grey, uneven border
        digit,  # a page: framed by the recipe
        encoded(Image.fromarray(255 - mnist[0]).convert("RGB"), "JPEG", quality=95),  # decoded by Pillow
    ]
    files = [("file", (f"{index}.img", data, "image/png")) for index, data in enumerate(pictures)]
    batch = client.post("/encode/batch", params={"model_input": "true"}, files=files)
    assert batch.status_code == 200, batch.text
    for data, item in zip(pictures, batch.json()["items"], strict=True):
        alone = client.post(
            "/encode", params={"model_input": "true"}, content=data, headers={"Content-Type": "image/png"}
        )
        assert item["model_input"]["pixels"] == alone.json()["model_input"]["pixels"]
    first, inverted = (np.array(item["model_input"]["pixels"]) for item in batch.json()["items"][:2])
    assert first.max() == inverted.max() == 1.0 and first[0].max() == inverted[0].max() == 0.0  # both white on black


def test_encode_invert_decides_which_is_ink(client, digit):
    def mu(invert: str) -> list[float]:
        response = client.post(
            "/encode", params={"invert": invert}, content=digit, headers={"Content-Type": "image/png"}
        )
        return response.json()["mu"]

    assert mu("auto") == mu("yes") != mu("no")  # dark ink on light paper: auto inverts it
    body = assert_problem(client.post("/encode", params={"invert": "maybe"}, content=digit), 422, "query.invert")
    assert "'auto', 'yes' or 'no'" in body["detail"]


def test_encode_takes_the_content_not_the_label(client, digit):
    jpeg = encoded(Image.open(io.BytesIO(digit)).convert("RGB"), "JPEG")
    mislabelled = client.post("/encode", files={"file": ("digit.png", jpeg, "image/png")})
    labelled = client.post("/encode", files={"file": ("digit.jpg", jpeg, "image/jpeg")})
    assert mislabelled.status_code == 200 and mislabelled.json()["mu"] == labelled.json()["mu"]


def test_decode_returns_a_png_by_default(client):
    response = client.post("/decode", json={"z": [0.5, -0.5]}, params={"upscale": 2})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (56, 56)


def test_decode_several_gives_a_grid_or_json(client):
    z = [[0.0, 0.0], [1.0, 1.0], [-1.0, 2.0]]
    grid = client.post("/decode", json={"z": z})
    assert Image.open(io.BytesIO(grid.content)).size == (56, 56)
    response = client.post("/decode", json={"z": z}, headers={"Accept": "application/json"})
    images = response.json()["images"]
    assert [image["z"] for image in images] == z
    pixels = np.array(images[2]["pixels"])
    assert pixels.shape == (28, 28) and 0 <= pixels.min() and pixels.max() <= 1
    from_png = np.asarray(Image.open(io.BytesIO(base64.b64decode(images[2]["png_base64"]))))
    np.testing.assert_array_equal(from_png, np.round(pixels * 255).astype(np.uint8))


def test_sample_is_reproducible_by_seed(client):
    first = client.get("/sample", params={"n": 4, "seed": 7}, headers={"Accept": "application/json"}).json()
    again = client.post("/sample", json={"n": 4, "seed": 7}, headers={"Accept": "application/json"}).json()
    assert first == again and first["seed"] == 7 and len(first["images"]) == 4
    assert client.post("/sample", headers={"Accept": "application/json"}).json()["temperature"] == 1.0
    png_response = client.get("/sample", params={"n": 4})
    assert png_response.headers["content-type"] == "image/png" and int(png_response.headers["x-seed"]) >= 0


def test_temperature_scales_the_draws(client):
    cold = client.get(
        "/sample", params={"n": 4, "seed": 1, "temperature": 0.5}, headers={"Accept": "application/json"}
    ).json()
    warm = client.get("/sample", params={"n": 4, "seed": 1}, headers={"Accept": "application/json"}).json()
    np.testing.assert_allclose(
        np.array([i["z"] for i in cold["images"]]) * 2, [i["z"] for i in warm["images"]], rtol=1e-6
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"z": [1.0, 2.0, 3.0]}, "latent size is 2"),
        ({"z": [[0.0, 0.0], [1.0]]}, "z[1] has 1 value;"),
        ({"z": ["a", 1.0]}, "valid number"),
        ({"z": [[0.0, 0.0]] * 9}, "the limit is 8"),
        ({"x": [0, 0]}, "body.z"),
    ],
)
def test_decode_rejects_bad_vectors(client, body, fragment):
    assert_problem(client.post("/decode", json=body), 422, fragment)


def test_an_empty_z_is_refused_with_what_to_send(client):
    refused = assert_problem(client.post("/decode", json={"z": []}), 422, "z is empty")
    assert refused["detail"] == "z is empty; send one latent vector or a list of them"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_decode_rejects_non_finite_values(client, literal):
    response = client.post("/decode", content=f'{{"z": [{literal}, 0]}}', headers={"Content-Type": "application/json"})
    assert_problem(response, 422, "not valid JSON")  # NaN and Infinity are not JSON numbers (RFC 8259)


def test_decode_rejects_malformed_json(client):
    response = client.post("/decode", content='{"z": [0, ', headers={"Content-Type": "application/json"})
    assert_problem(response, 422, "JSON")


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"n": 0}, "greater than or equal to 1"),
        ({"n": 17}, "limit of 16"),
        ({"temperature": 0}, "greater than 0"),
        ({"temperature": 100}, "less than or equal to 10"),
        ({"seed": -1}, "greater than or equal to 0"),
        ({"upscale": 99}, "upscale 99"),
        ({"n": "many"}, "query.n: Input should be a valid integer"),
    ],
)
def test_sample_rejects_bad_parameters(client, params, fragment):
    assert_problem(client.get("/sample", params=params), 422, fragment)


@pytest.mark.parametrize(
    ("content", "content_type", "status", "fragment"),
    [
        (b"", "image/png", 422, "empty body"),
        (b"hello", "text/plain", 415, "not accepted"),
        (b"\x00" * 100, "image/png", 415, "accepted format"),
        (png_with_header(100_000, 100_000), "image/png", 422, "limit"),
        (png(digit_on_paper())[:-40], "image/png", 422, "truncated"),
        (b"x" * 1_000_001, "image/png", 413, "over 1000000 bytes"),
    ],
)
def test_encode_rejects_bad_uploads(client, content, content_type, status, fragment):
    assert_problem(client.post("/encode", content=content, headers={"Content-Type": content_type}), status, fragment)


def test_encode_counts_streamed_bytes_when_length_is_absent(client):
    chunks = (b"x" * 100_000 for _ in range(20))  # no Content-Length: chunked transfer
    assert_problem(client.post("/encode", content=chunks, headers={"Content-Type": "image/png"}), 413, "over")


def test_multipart_errors(client, digit):
    no_file = b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--b--\r\n'
    response = client.post("/encode", content=no_file, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert_problem(response, 422, "form field 'note' is not read")
    empty = b"--b--\r\n"
    response = client.post("/encode", content=empty, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert_problem(response, 422, "has no file")
    truncated = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n' + digit[:50]
    response = client.post("/encode", content=truncated, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert_problem(response, 422, "unreadable multipart form")
    response = client.post("/encode", content=truncated, headers={"Content-Type": "multipart/form-data"})
    assert_problem(response, 422, "has no boundary")
    too_many = [("file", (f"{i}.png", digit, "image/png")) for i in range(9)]
    assert_problem(client.post("/encode/batch", files=too_many), 422, "the limit is 8")
    two = too_many[:2]
    assert_problem(client.post("/encode", files=two), 422, "the limit is 1")


def test_unknown_routes_and_methods_use_the_same_shape(client):
    listed = "Every route is listed at /docs and /openapi.json"
    assert_problem(client.get("/nowhere"), 404, f"no route serves /nowhere. {listed}")
    assert_problem(client.post("/encod"), 404, f"no route serves /encod; did you mean /encode or /decode? {listed}")
    assert_problem(client.put("/encode"), 405, "PUT /encode is not allowed; use POST")


def test_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert len(client.get("/healthz", headers={"X-Request-ID": "bad id\n"}).headers["x-request-id"]) == 32


def test_openapi_documents_every_route(client):
    spec = client.get("/openapi.json").json()
    assert {"/encode", "/encode/batch", "/decode", "/sample", "/healthz", "/readyz", "/model"} <= set(spec["paths"])
    encode = spec["paths"]["/encode"]["post"]
    assert {"image/png", "multipart/form-data"} <= set(encode["requestBody"]["content"])
    assert {"413", "415", "422"} <= set(encode["responses"])
    assert client.get("/docs").status_code == 200


def test_encode_scores_novelty_and_shows_what_the_model_saw(client, digit):
    plain = client.post("/encode", content=digit, headers={"Content-Type": "image/png"}).json()
    assert set(plain) == {"model_id", "latent_size", "mu", "sigma", "novelty"}
    assert 0 <= plain["novelty"]["percentile"] <= 100
    shown = client.post("/encode?model_input=true", content=digit, headers={"Content-Type": "image/png"}).json()
    pixels = np.array(shown["model_input"]["pixels"])
    from_png = np.asarray(Image.open(io.BytesIO(base64.b64decode(shown["model_input"]["png_base64"]))))
    assert pixels.shape == (28, 28) and np.array_equal(np.round(pixels * 255), from_png)
    assert shown["mu"] == plain["mu"] and shown["novelty"] == plain["novelty"]


def test_the_novelty_score_is_the_models_own_to_two_decimals(sample_data_dir):
    digits = load_dataset(sample_data_dir).test.images[:8]
    files = [("file", (f"{index}.png", png(digit), "image/png")) for index, digit in enumerate(digits)]
    with make_client(BUNDLED_MODEL) as bundled:
        items = bundled.post("/encode/batch", params={"model_input": "true"}, files=files).json()["items"]
    inputs = np.array([item["model_input"]["pixels"] for item in items], np.float32)[:, None]
    *_, elbo, percentile = VerifiedModel.load(BUNDLED_MODEL, threads=1).assess(inputs)  # one call, as the request's
    for item, score, share in zip(items, elbo.tolist(), percentile.tolist(), strict=True):
        assert item["novelty"] == {"elbo": round(score, 2), "percentile": round(share, 2)}


def test_noise_scores_far_below_a_digit(sample_data_dir):
    digit = png(load_dataset(sample_data_dir).test.images[0])
    framed = np.zeros((28, 28), np.uint8)  # noise framed as MNIST frames a digit: in training form
    framed[4:24, 4:24] = np.random.default_rng(0).random((20, 20)) * 255
    noise = png(framed)
    with make_client(BUNDLED_MODEL) as bundled:
        digit_novelty, noise_novelty = (
            bundled.post("/encode", content=body, headers={"Content-Type": "image/png"}).json()["novelty"]
            for body in (digit, noise)
        )
    assert digit_novelty["percentile"] > 10 and noise_novelty["percentile"] < 1


def test_a_blank_page_is_a_422_that_says_so(client):
    blank = encoded(Image.new("L", (300, 200), 240), "JPEG")
    assert_problem(client.post("/encode", content=blank, headers={"Content-Type": "image/jpeg"}), 422, "no ink")


def test_a_bad_file_in_a_batch_is_named(client, digit):
    files = [
        ("file", ("good.png", digit, "image/png")),
        ("file", ("blank.png", png(np.zeros((40, 40), np.uint8)), "image/png")),
    ]
    assert_problem(client.post("/encode/batch", files=files), 422, "file 1 ('blank.png')")


def test_the_schema_documents_json_responses_and_one_problem_shape(client):
    spec = client.get("/openapi.json").json()
    decode = spec["paths"]["/decode"]["post"]["responses"]
    assert decode["200"]["content"]["application/json"]["schema"]["properties"]["images"]["items"] == {
        "$ref": "#/components/schemas/DecodedImage"
    }
    sample = spec["paths"]["/sample"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert {"seed", "temperature", "images"} <= set(sample["properties"])
    assert decode["422"]["content"][PROBLEM]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}
    assert "ProblemDetails" in spec["components"]["schemas"]


def test_the_error_example_is_what_the_route_says(client):
    example = client.get("/openapi.json").json()["components"]["schemas"]["ProblemDetails"]["properties"]
    real = client.post("/decode", json={"z": [1.0, 2.0, 3.0]}).json()
    assert real["title"] == example["title"]["examples"][0]
    assert real["detail"] == example["detail"]["examples"][0]


def test_docs_work_offline_and_declare_the_key(model_dir):
    with make_client(model_dir, api_key="s3cret") as keyed:
        page = keyed.get("/docs")
        assert page.status_code == 200 and "cdn" not in page.text.lower()
        assert keyed.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
        spec = keyed.get("/openapi.json").json()
        assert {"bearer", "apiKey"} == set(spec["components"]["securitySchemes"])
        assert keyed.post("/decode", json={"z": [0, 0]}).status_code == 401


def test_counts_in_messages_take_their_plural_only_when_not_one(model_dir):
    def detail(response) -> str:
        return assert_problem(response, 422, "")["detail"]

    with make_client(model_dir, max_batch=1) as client:
        assert detail(client.post("/decode", json={"z": [1.0]})) == "z[0] has 1 value; this model's latent size is 2"
        two = client.post("/decode", json={"z": [[0, 0], [1, 1]]})
        assert detail(two) == "2 latent vectors in one request; the limit is 1"
        form = [("file", ("a.png", b"x", "image/png")), ("file", ("b.png", b"x", "image/png"))]
        too_many = client.post("/encode/batch", files=form)
        assert detail(too_many) == "too many files; the limit is 1: send at most 1 image"


def test_light_ink_on_a_transparent_background_says_how_to_send_it(client):
    pixels = np.zeros((100, 100, 4), np.uint8)
    pixels[30:70, 45:55] = 255  # opaque white ink; the rest transparent
    picture = encoded(Image.fromarray(pixels, "RGBA"))
    response = client.post("/encode", content=picture, headers={"Content-Type": "image/png"})
    detail = assert_problem(response, 422, "no ink found")["detail"]
    assert "transparent areas count as white paper" in detail and "dark background" in detail
