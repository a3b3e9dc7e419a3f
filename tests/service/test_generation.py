"""/interpolate and /reconstruct: paths between two points or two pictures, and a picture sent
through both halves, checked against /encode and /decode."""

import io

import numpy as np
import pytest
from PIL import Image

from harness.bodies import png
from service.core.served import walk
from tests.service.conftest import assert_problem
from training.data import load_dataset

JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def digits(sample_data_dir) -> list[bytes]:
    return [png(image) for image in load_dataset(sample_data_dir).test.images[:2]]


def zs(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array([image["z"] for image in response.json()["images"]])


def test_a_straight_path_is_evenly_spaced_between_its_ends(client):
    z = zs(
        client.post(
            "/interpolate", json={"start": [-2, 0], "end": [2, 1], "steps": 5, "path": "straight"}, headers=JSON
        )
    )
    np.testing.assert_allclose(z, [[-2, 0], [-1, 0.25], [0, 0.5], [1, 0.75], [2, 1]], atol=1e-6)


def test_a_spherical_path_keeps_the_distance_from_the_origin(client):
    z = zs(client.post("/interpolate", json={"start": [2, 0], "end": [0, 2], "steps": 7}, headers=JSON))
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 2, atol=1e-5)
    np.testing.assert_allclose(z[[0, -1]], [[2, 0], [0, 2]], atol=1e-6)
    opposite = zs(client.post("/interpolate", json={"start": [1, 0], "end": [-1, 0], "steps": 3}, headers=JSON))
    np.testing.assert_allclose(opposite[1], [0, 0], atol=1e-6)  # no great circle between opposite ends: straight


def ends(start, end) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(start, np.float32), np.asarray(end, np.float32)


def test_a_spherical_path_between_ends_of_any_length_follows_the_slerp_formula():
    start, end = ends([2, 0], [2, 2])  # 45 degrees apart, lengths 2 and 2.83
    # slerp's midpoint is (start + end) sin(angle/2) / sin(angle) = (start + end) / (2 cos(angle/2))
    np.testing.assert_allclose(walk(start, end, 3, "spherical")[1], [4, 2] / (2 * np.cos(np.pi / 8)), rtol=1e-6)
    short_start, short_end = ends([0.5, 0], [0, 0.5])  # shorter than 1: still a great circle
    np.testing.assert_allclose(np.linalg.norm(walk(short_start, short_end, 5, "spherical"), axis=1), 0.5, rtol=1e-6)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ([0, 0], [2, 1]),  # from the origin: no direction to turn from
        ([0.13, -0.13], [0.39, -0.39]),  # parallel: in float32 their cosine rounds to just over 1
        ([0.13, -0.13], [-0.39, 0.39]),  # opposite: just under -1
    ],
)
def test_a_spherical_path_with_no_great_circle_is_the_straight_one(start, end):
    start, end = ends(start, end)
    straight = walk(start, end, 5, "straight")
    np.testing.assert_allclose(straight[2], (start + end) / 2, rtol=1e-6)
    np.testing.assert_allclose(walk(start, end, 5, "spherical"), straight, rtol=1e-6)


def test_the_strip_is_one_row_of_steps_images(client):
    response = client.post("/interpolate", json={"start": [0, 0], "end": [1, 1], "steps": 6}, params={"upscale": 2})
    assert response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (6 * 56, 56)


def test_between_two_pictures_the_ends_are_their_posterior_means(client, digits):
    files = [("file", (f"{index}.png", digit, "image/png")) for index, digit in enumerate(digits)]
    z = zs(client.post("/interpolate", files=files, params={"steps": 4}, headers=JSON))
    means = [
        client.post("/encode", content=digit, headers={"Content-Type": "image/png"}).json()["mu"] for digit in digits
    ]
    np.testing.assert_allclose(z[[0, -1]], means, atol=1e-6)
    assert_problem(client.post("/interpolate", files=files[:1]), 422, "send two files")


@pytest.mark.parametrize(
    ("request_json", "params", "fragment"),
    [
        ({"start": [0, 0, 0], "end": [1, 1]}, {}, "start has 3 values; this model's latent size is 2"),
        ({"start": [0, 0], "end": [1]}, {}, "end has 1 value; this model's latent size is 2"),
        ({"start": [0, 0], "end": [1, 1], "steps": 9}, {}, "steps=9 is over the limit of 8"),
        ({"start": [0, 0], "end": [1, 1], "steps": 1}, {}, "greater than or equal to 2"),
        ({"start": [0, 0], "end": [1, 1], "path": "curved"}, {}, "'straight' or 'spherical'"),
        ({"end": [1, 1]}, {"start": "0"}, "'start' belongs in the JSON body"),
        ({"start": [0, 0], "end": [1, 1]}, {"steps": "3", "stride": "2"}, "unknown query parameter 'stride'"),
    ],
)
def test_interpolate_errors_say_what_to_fix(client, request_json, params, fragment):
    assert_problem(client.post("/interpolate", json=request_json, params=params), 422, fragment)


def test_reconstruct_is_decode_of_the_posterior_mean(client, digits):
    headers = {"Content-Type": "image/png", **JSON}
    reconstruction = client.post("/reconstruct", content=digits[0], headers=headers).json()
    encoding = client.post("/encode", content=digits[0], headers=headers).json()
    assert reconstruction["mu"] == encoding["mu"] and reconstruction["novelty"] == encoding["novelty"]
    decoded = client.post("/decode", json={"z": encoding["mu"]}, headers=JSON).json()["images"][0]
    assert reconstruction["images"][0]["pixels"] == decoded["pixels"]
    as_png = client.post(
        "/reconstruct", content=digits[0], headers={"Content-Type": "image/png"}, params={"upscale": 3}
    )
    assert Image.open(io.BytesIO(as_png.content)).size == (84, 84)
    assert_problem(
        client.post("/reconstruct", content=b"GIF89a", headers={"Content-Type": "image/gif"}), 415, "not an image"
    )
