"""The explorer page in Debian's chromium against the real server: page weight, first paint of the
map, and the pointer-to-image loop (pointer moved over the map -> decoded image shown).

    python -m benchmarks.explorer [--loads 5] [--moves 100] [--smoke]
"""

import argparse
import statistics

from playwright.sync_api import sync_playwright

from harness.server import running_server

CHROMIUM = "/usr/bin/chromium"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--moves", type=int, default=100)
    parser.add_argument("--smoke", action="store_true", help="one load, ten moves")
    args = parser.parse_args()
    loads, moves = (1, 10) if args.smoke else (args.loads, args.moves)
    with running_server(None) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        paints, weights = [], []
        for _ in range(loads):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.goto(server.url)
            page.wait_for_selector("#map[data-painted]")
            paints.append(page.evaluate("() => performance.getEntriesByName('map-painted')[0].startTime"))
            entries = page.evaluate(
                "() => performance.getEntriesByType('resource').map(e => [e.name, e.encodedBodySize])"
            )
            document = page.evaluate("() => performance.getEntriesByType('navigation')[0].encodedBodySize")
            weights.append(
                (
                    document + sum(size for name, size in entries if "/models" not in name),
                    sum(size for name, size in entries if "/reference" in name),
                )
            )
            context.close()
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(server.url)
        page.wait_for_selector("#map[data-painted]")
        box = page.locator("#map").bounding_box()
        for index in range(moves):  # one move at a time: each loop on its own
            x = box["x"] + box["width"] * (0.2 + 0.6 * ((index * 37) % 100) / 100)
            y = box["y"] + box["height"] * (0.2 + 0.6 * ((index * 61) % 100) / 100)
            page.mouse.move(x, y)
            page.wait_for_function(f"() => performance.getEntriesByName('pointer-to-image').length > {index}")
        # From the pointer event to the decoded image ready in the page, as the page measures it.
        loops = page.evaluate("() => performance.getEntriesByName('pointer-to-image').map(e => e.duration)")
        browser.close()
    page_weight, reference = weights[0]
    print(f"page weight: {page_weight / 1000:.1f} KB (HTML, JS, CSS), plus the reference set {reference / 1000:.0f} KB")
    print(f"first paint of the map: median {statistics.median(paints):.0f} ms over {loads} load(s)")
    print(
        f"pointer to image: median {statistics.median(loops):.1f} ms, "
        f"p90 {statistics.quantiles(loops, n=10)[-1]:.1f} ms over {moves} moves"
    )


if __name__ == "__main__":
    main()
