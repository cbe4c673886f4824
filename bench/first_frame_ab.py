"""Paired A/B of time to first frame: is variant B of the call page faster than A?

The machine's noise (tens of ms from one page load to the next) hides
effects of a few ms in first_frame.py's medians. Here every round opens each
case once, one after the other (the order reversed every other round), and
each case is compared with the first one round by round: the median of the
per-round differences, with a bootstrap 90 % interval. 60-80 rounds resolve
about 5 ms (docs/benchmarks.md).

A case is NAME=PATH or NAME=PATH|CSS:
- PATH on the benchmark's server: the call page (/r/bench?name=guest&prejoin=0, plus
  any query of your own for a variant the code reads), the client library
  page (/bench/library), the room page with the library's script
  (/bench/room-library?name=guest);
- CSS, optional, is added to the page before it loads (an adopted style
  sheet), to try a style without editing style.css.
The floor (first_frame.py) is always measured too, for ratios.

    scripts/netns python bench/first_frame_ab.py --rounds 70 \\
        'app=/r/bench?name=guest&prejoin=0' \\
        'no controls=/r/bench?name=guest&prejoin=0|.controls{display:none!important}'

To try a change of the page or its scripts, copy src/rtcroom/web, change the
copy and pass it as `--variant NAME=DIR`: `/r/bench?name=guest&prejoin=0&variant=NAME`
is then the room page from DIR, with its /static/ files from DIR too.

    cp -r src/rtcroom/web /tmp/b && $EDITOR /tmp/b/app.js
    scripts/netns python bench/first_frame_ab.py --variant b=/tmp/b \\
        'app=/r/bench?name=guest&prejoin=0' 'b=/r/bench?name=guest&prejoin=0&variant=b'
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

from first_frame import (
    FIRST_FRAME_PROBE,
    FLOOR_PAGE,
    LIBRARY_PAGE,
    open_and_wait,
    open_host,
    room_page_with_library,
)
from harness import launch, rtcroom_server
from playwright.sync_api import sync_playwright

FLOOR = "floor"


def parse_case(spec: str) -> tuple[str, str, list[str]]:
    """NAME=PATH[|CSS] -> (name, path, init scripts)."""
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest.startswith("/"):
        raise SystemExit(f"a case is NAME=PATH or NAME=PATH|CSS, with PATH from /: {spec!r}")
    path, _, css = rest.partition("|")
    scripts = []
    if css:
        scripts.append(
            "(() => { const sheet = new CSSStyleSheet(); "
            f"sheet.replaceSync({json.dumps(css)}); document.adoptedStyleSheets = [sheet]; }})();"
        )
    # The call page logs its first frame through the probe; the others log their own.
    if path.startswith("/r/"):
        scripts.append(FIRST_FRAME_PROBE)
    return name, path, scripts


def paired(samples: list[float], reference: list[float]) -> tuple[float, float, float]:
    """Median of the per-round differences and its bootstrap 90 % interval."""
    differences = [b - a for a, b in zip(reference, samples, strict=True)]
    rng = random.Random(0)
    medians = sorted(
        statistics.median(rng.choices(differences, k=len(differences))) for _ in range(2000)
    )
    return statistics.median(differences), medians[100], medians[1899]


def measure(
    rounds: int, cases: list[tuple[str, str, list[str]]], variants: dict[str, Path]
) -> dict[str, list[float]]:
    """ms from navigation to the first remote frame, per case and round."""
    cases = [*cases, (FLOOR, "/bench/floor", [])]
    pages = {
        "/bench/floor": FLOOR_PAGE,
        "/bench/library": LIBRARY_PAGE,
        "/bench/room-library": room_page_with_library(),
    }
    results: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    with rtcroom_server(pages, variants) as base, sync_playwright() as playwright:
        browser = launch(playwright)
        open_host(browser, base)
        for _, path, scripts in cases:  # one warm-up each, not counted
            open_and_wait(browser, base + path, scripts, "first-frame ")
        for round_ in range(rounds):
            for name, path, scripts in cases if round_ % 2 == 0 else cases[::-1]:
                results[name].append(
                    float(open_and_wait(browser, base + path, scripts, "first-frame "))
                )
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=70)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="serve the web assets in DIR at /r/ROOM?variant=NAME (repeatable)",
    )
    parser.add_argument("cases", nargs="+", metavar="NAME=PATH[|CSS]")
    args = parser.parse_args()
    variants = {}
    for spec in args.variant:
        name, _, directory = spec.partition("=")
        if not name or not (Path(directory) / "room.html").is_file():
            raise SystemExit(f"a variant is NAME=DIR, DIR a copy of src/rtcroom/web: {spec!r}")
        variants[name] = Path(directory)
    cases = [parse_case(spec) for spec in args.cases]
    names = [name for name, _, _ in cases]
    if len(set(names)) != len(names) or FLOOR in names:
        raise SystemExit(f"case names must differ from each other and from {FLOOR!r}")
    results = measure(args.rounds, cases, variants)
    floor = statistics.median(results[FLOOR])
    reference = names[0]
    print(f"rounds: {args.rounds}, each case once per round, order reversed every other round")
    print(
        f"| case | median ms | ratio to floor | paired difference to {reference} (90 % interval) |"
    )
    print("|---|---:|---:|---|")
    for name, samples in results.items():
        median = statistics.median(samples)
        cell = "-"
        if name != reference:
            difference, low, high = paired(samples, results[reference])
            cell = f"{difference:+.1f} ms ({low:+.1f} to {high:+.1f})"
        print(f"| {name} | {median:.0f} | {median / floor:.2f} | {cell} |")


if __name__ == "__main__":
    main()
