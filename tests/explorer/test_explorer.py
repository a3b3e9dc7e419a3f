"""The latent explorer in a real browser (Debian's chromium, driven by Playwright) against the real
server: real pointer events, real MNIST digits, and the page's answers checked against the API's."""

import base64
import json

import httpx
import numpy as np
import pytest
from PIL import Image

from harness.bodies import png
from harness.pictures import photographed
from harness.server import running_server
from training.cli import main
from training.data import load_dataset

pytestmark = pytest.mark.browser

PAGE_WEIGHT_LIMIT = 500_000


def dark_pixels(page) -> int:
    """Pixels of the map that are neither white nor the prior's grey: the points and overlays."""
    return page.evaluate(
        """() => {
            const canvas = document.getElementById("map");
            const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
            let count = 0;
            for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] < 600) count++;
            return count;
        }"""
    )


def map_point(page, u: float, v: float) -> tuple[float, float]:
    """Where the plane's (u, v) is on the screen."""
    x, y = page.evaluate("([u, v]) => window.explorerMap.toScreen(u, v)", [u, v])
    box = page.locator("#map").bounding_box()
    return box["x"] + x, box["y"] + y


def wait_until_landed(page, mu: list[float]) -> None:
    page.wait_for_function(
        """(expected) => {
            const shown = JSON.parse(document.getElementById("landed").dataset.mu || "null");
            return shown !== null && shown.every((value, k) => Math.abs(value - expected[k]) < 1e-6);
        }""",
        arg=mu,
    )


def test_the_map_shows_the_test_set_by_class_and_the_page_is_light(page, server, tmp_path):
    classes = page.locator("#legend label")
    assert classes.count() == 10 and classes.first.inner_text().strip() == "0"
    count = httpx.get(f"{server.url}/models/mnist").json()["reference"]["count"]
    assert page.evaluate("() => window.explorerMap.points.labels.length") == count
    drawn = dark_pixels(page)
    assert drawn > 5_000  # 10,000 points
    classes.nth(1).locator("input").uncheck()  # hide the ones
    page.wait_for_timeout(100)
    assert dark_pixels(page) < drawn
    page.screenshot(path=tmp_path / "map.png")
    weights = page.evaluate(
        "() => performance.getEntriesByType('resource')"
        ".filter(e => !e.name.includes('/models')).map(e => e.encodedBodySize)"
    )
    document = page.evaluate("() => performance.getEntriesByType('navigation')[0].encodedBodySize")
    assert document + sum(weights) < PAGE_WEIGHT_LIMIT


def test_pointing_decodes_live_and_clicking_pins(page, server):
    x, y = map_point(page, 1.0, -0.5)
    page.mouse.move(x, y)
    page.wait_for_function("() => document.getElementById('preview').dataset.shown")
    shown = json.loads(page.locator("#preview").get_attribute("data-z"))
    np.testing.assert_allclose(shown, [1.0, -0.5], atol=0.05)
    expected = httpx.post(f"{server.url}/decode", json={"z": shown}, headers={"Accept": "application/json"}).json()
    assert page.locator("#preview").get_attribute("src").endswith(expected["images"][0]["png_base64"])
    page.mouse.click(x, y)
    page.wait_for_selector("#pins figure")
    assert "pin" in page.locator("#walk-ends").inner_text()


def stroke(page, points: list[tuple[float, float]]) -> None:
    """One stroke on the pad through points given as fractions of its width and height."""
    box = page.locator("#pad").bounding_box()
    at = [(box["x"] + box["width"] * x, box["y"] + box["height"] * y) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for point in at[1:]:
        page.mouse.move(*point, steps=3)
    page.mouse.up()


def test_a_drawn_one_lands_where_the_api_puts_it_among_the_ones(page, server):
    stroke(page, [(0.5, 0.15 + 0.07 * step) for step in range(11)])  # one stroke down the middle
    page.wait_for_selector("#landed:not([hidden])")
    page.wait_for_selector("#nearest figure")
    drawn = base64.b64decode(page.evaluate("() => document.getElementById('pad').toDataURL('image/png').split(',')[1]"))
    expected = httpx.post(f"{server.url}/encode", content=drawn, headers={"Content-Type": "image/png"}).json()
    np.testing.assert_allclose(json.loads(page.locator("#landed").get_attribute("data-mu")), expected["mu"], atol=1e-6)
    assert page.locator("#nearest figure").count() == 5
    assert page.locator("#nearest figcaption").first.inner_text() == "1"  # its neighbours are ones
    assert "% of test images score lower" in page.locator("#novelty").inner_text()


def test_a_drawn_zero_lands_among_the_zeros(page):
    loop = [(0.5 + 0.22 * np.sin(angle), 0.5 - 0.32 * np.cos(angle)) for angle in np.linspace(0, 2 * np.pi, 40)]
    stroke(page, loop)
    page.wait_for_selector("#nearest figure")
    assert page.locator("#nearest figcaption").all_inner_texts().count("0") >= 4


def test_hovering_changes_the_image(page):
    images = []
    for u, v in ((-2.0, -1.0), (1.5, 1.5)):
        page.mouse.move(*map_point(page, u, v))
        page.wait_for_function(f"() => Number(document.getElementById('preview').dataset.shown) >= {len(images) + 1}")
        images.append(page.locator("#preview").get_attribute("src"))
    assert images[0] != images[1]


def test_the_keyboard_reaches_the_map(page):
    page.locator("#map").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.getElementById('preview').dataset.shown")
    page.keyboard.press("Enter")
    page.wait_for_selector("#pins figure")


def test_an_error_from_the_service_is_shown_in_words(page, console):
    console.expected.append("status of 415")
    page.locator("#upload").set_input_files({"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture"})
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert "not an image in an accepted format" in page.locator("#status").inner_text()


def test_a_photo_uploaded_or_dropped_lands_where_the_api_puts_it(page, server, sample_data_dir):
    test = load_dataset(sample_data_dir).test
    photo = photographed()(test.images[3], np.random.default_rng(0))  # a real digit, photographed
    expected = httpx.post(f"{server.url}/encode", content=photo, headers={"Content-Type": "image/jpeg"}).json()["mu"]
    page.locator("#upload").set_input_files({"name": "photo.jpg", "mimeType": "image/jpeg", "buffer": photo})
    wait_until_landed(page, expected)
    clean = png(test.images[4])
    dropped = page.evaluate_handle(
        """(data) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "digit.png", { type: "image/png" }));
            return transfer;
        }""",
        base64.b64encode(clean).decode(),
    )
    page.dispatch_event("#map", "drop", {"dataTransfer": dropped})
    expected = httpx.post(f"{server.url}/encode", content=clean, headers={"Content-Type": "image/png"}).json()["mu"]
    wait_until_landed(page, expected)


def test_a_picture_of_a_number_shows_each_digit_where_the_api_puts_it(page, server, console, sample_data_dir):
    console.expected.append("status of 422")  # /reconstruct refuses a number; the page then asks /encode/digits
    digits = load_dataset(sample_data_dir).test.images[:3]
    strip = np.full((60, 28 * 3 + 32), 235, np.uint8)
    for index, digit in enumerate(digits):
        strip[16:44, 16 + 28 * index : 44 + 28 * index] = 235 - (digit.astype(np.int32) * 215 // 255)
    number = png(np.asarray(Image.fromarray(strip).resize((strip.shape[1] * 5, strip.shape[0] * 5), Image.BICUBIC)))
    found = httpx.post(f"{server.url}/encode/digits", content=number, headers={"Content-Type": "image/png"}).json()
    page.locator("#upload").set_input_files({"name": "number.png", "mimeType": "image/png", "buffer": number})
    page.wait_for_selector("#number:not([hidden])")
    assert "3 digits in number.png" in page.locator("#number-count").inner_text()
    captions = page.locator("#digits figcaption").all_inner_texts()
    assert [caption.split(":")[0] for caption in captions] == ["1", "2", "3"]
    for caption, item in zip(captions, found["items"], strict=True):  # each mu as the API gives it, to 2 places
        shown = [float(value) for value in caption.split(": ", 1)[1].strip("()").split(", ")]
        assert np.allclose(shown, item["mu"], atol=0.006)
    assert page.locator("#landed").is_hidden()


def test_walk_sample_and_manifold(page, server):
    for u, v in ((-2.0, 0.0), (2.0, 0.5)):
        page.mouse.click(*map_point(page, u, v))
    page.locator("#steps").fill("6")
    page.locator("#walk").click()
    page.wait_for_selector("#strip figure >> nth=5")
    page.locator("#seed").fill("42")
    page.locator("#count").fill("4")
    page.locator("#sample").click()
    page.wait_for_selector("#samples figure >> nth=3")
    assert "seed 42" in page.locator("#seed-used").inner_text()
    first = page.locator("#samples img").first.get_attribute("src")
    page.locator("#samples").evaluate("element => element.replaceChildren()")
    page.locator("#sample").click()  # the same seed again: the same draw
    page.wait_for_selector("#samples figure >> nth=3")
    assert page.locator("#samples img").first.get_attribute("src") == first
    expected = httpx.post(f"{server.url}/sample", json={"n": 4, "seed": 42}, headers={"Accept": "application/json"})
    captions = page.locator("#samples figcaption").all_inner_texts()
    assert captions[0] == "(" + ", ".join(f"{value:.2f}" for value in expected.json()["images"][0]["z"]) + ")"
    before = dark_pixels(page)
    page.locator("#manifold").check()
    page.wait_for_function("() => window.explorerMap.manifold !== null")
    page.wait_for_timeout(100)
    assert dark_pixels(page) > before


@pytest.mark.parametrize("page", [390], indirect=True)
def test_the_layout_holds_at_a_phones_width(page):
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    box = page.locator("#map").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] >= 250
    assert page.locator("#pad").is_visible() and page.locator("#sample").is_visible()
    assert dark_pixels(page) > 5_000


def test_the_model_switcher_changes_the_map(page):
    page.locator("#model").select_option("fashion-mnist")
    page.wait_for_function("() => document.querySelector('#legend label')?.innerText.includes('T-shirt/top')")
    assert "fashion-mnist" in page.locator("#status").inner_text()


def test_the_api_key_is_asked_once_and_kept_out_of_urls(browser):
    with running_server(None, VAE_API_KEY="s3cret") as server:
        context = browser.new_context()
        page = context.new_page()
        urls = []
        page.on("request", lambda request: urls.append(request.url))
        page.goto(server.url)
        page.wait_for_selector("#key-dialog[open]")
        page.locator("#key").fill("s3cret")
        page.locator("#key-form button").click()
        page.wait_for_selector("#map[data-painted]")
        assert page.evaluate("() => sessionStorage.getItem('vae-api-key')") == "s3cret"
        assert not any("s3cret" in url for url in urls)
        page.reload()  # the same tab keeps the key for the session
        page.wait_for_selector("#map[data-painted]")
        assert not page.locator("#key-dialog[open]").count()
        context.close()


@pytest.fixture(scope="module")
def three_dimensional_model(tmp_path_factory, sample_data_dir):
    """A quick K=3 model: the page shows its principal plane, the third axis on a slider."""
    out = tmp_path_factory.mktemp("k3")
    main(["train", "--data-dir", str(sample_data_dir), "--out-dir", str(out), "--epochs", "2",
          "--vae.latent-size", "3", "--vae.hidden-sizes", "[32]", "--iw-samples", "20", "--iw-images", "20",
          "--validation-size", "100"])  # fmt: skip
    return out / "model"


def test_a_larger_latent_space_is_shown_on_its_principal_plane_with_a_slider(browser, three_dimensional_model):
    with running_server(three_dimensional_model) as server:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(server.url)
        page.wait_for_selector("#map[data-painted]")
        slider = page.locator("#sliders input[type=range]")
        assert slider.count() == 1 and page.locator("#sliders").is_visible()
        box = page.locator("#map").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.4)
        page.wait_for_function("() => document.getElementById('preview').dataset.shown")
        first = json.loads(page.locator("#preview").get_attribute("data-z"))
        assert len(first) == 3
        slider.fill("2")
        page.mouse.move(box["x"] + box["width"] * 0.6 + 1, box["y"] + box["height"] * 0.4)
        page.wait_for_function("() => Number(document.getElementById('preview').dataset.shown) >= 2")
        second = json.loads(page.locator("#preview").get_attribute("data-z"))
        assert np.linalg.norm(np.subtract(second, first)) > 1.5  # the slider moved z off the plane
        context.close()


def test_the_bundled_k16_model_is_shown_on_its_principal_plane(page):
    page.locator("#model").select_option("mnist-k16")
    page.wait_for_function("() => document.querySelectorAll('#sliders input[type=range]').length === 14")  # axes 3-16
    page.wait_for_selector("#map[data-painted]")
    assert page.locator("#status").inner_text() == "10000 test images of mnist, on the first two of 16 principal axes"
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45)
    page.wait_for_function("() => JSON.parse(document.getElementById('preview').dataset.z || '[]').length === 16")
