import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from harness.server import running_server

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: `apt-get install chromium`


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail("no chromium: apt-get install chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server():
    with running_server(None) as server:
        yield server


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url)
    page.wait_for_selector("#map[data-painted]")
    yield page
    context.close()
    assert not errors, errors
