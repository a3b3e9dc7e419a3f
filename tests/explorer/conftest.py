import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from harness.server import running_server
from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package: `apt-get install chromium`
SCREENSHOTS = REPO / "test-output" / "explorer"  # not committed; look at them after a run


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        pytest.fail("no chromium: apt-get install chromium (.ci/run does)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server():
    with running_server(None) as server:
        yield server


class Console:
    """What the page reported: uncaught errors and console errors, less those a test expects."""

    def __init__(self):
        self.errors: list[str] = []
        self.expected: list[str] = []

    def unexpected(self) -> list[str]:
        return [error for error in self.errors if not any(fragment in error for fragment in self.expected)]


@pytest.fixture
def console():
    return Console()


@pytest.fixture
def page(browser, server, console, request):
    width = getattr(request, "param", 1400)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.on("pageerror", lambda error: console.errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and console.errors.append(message.text))
    page.goto(server.url)
    page.wait_for_selector("#map[data-painted]")
    yield page
    page.screenshot(path=SCREENSHOTS / f"{request.node.name}.png", full_page=True)
    context.close()
    assert not console.unexpected(), console.errors
