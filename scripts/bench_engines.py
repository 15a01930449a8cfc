#!/usr/bin/env python3
"""Browser guests in each engine (Chromium, Firefox), each with its default settings: from
opening the page to being in the room, and to the first audio; and the guest's mouth-to-ear
against a node listener's in the same run.

Real processes on loopback: a host (``p2pspaces start --headless --web``) speaking a click every
second, a node listener recording it, and one browser page per engine and run (Debian's
chromium through Playwright; firefox-esr over WebDriver BiDi, :mod:`p2pspaces.testing.firefox`).
Firefox hides the page's address behind an mDNS name, so its figures include the node's lookup;
it plays to a PulseAudio null sink of the script's own (headless, it has no sound device, and
its Web Audio would not start).

* In room: from ``goto`` to the room showing (typing the name and joining as fast as a script
  can); first audio: to the page's first decoded audio (WebRTC stats).
* Mouth-to-ear: the click's frame handed to the host's pipeline to the click heard at the page
  (an AnalyserNode polled every 2 ms) or leaving the node listener's playout, over ``--seconds``.

    python3 scripts/bench_engines.py [--runs 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench_web import (
    FIRST_AUDIO_JS,
    ONSETS_JS,
    Proc,
    clicks_wav,
    delays,
    node_onsets,
    send_times,
)

from p2pspaces.testing.firefox import firefox
from p2pspaces.testing.pulse import pulse_server

CHROMIUM = "/usr/bin/chromium"
ENGINES = ("chromium", "firefox")


@contextmanager
def browser_page(engine: str, folder: Path) -> Iterator[Any]:
    """A phone-sized page in ``engine``."""
    if engine == "firefox":  # real (null) sound devices: headless Firefox has none otherwise
        with pulse_server(folder) as sound, firefox(None, folder, sound) as browser:
            yield browser.new_page()
        return
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only when measured

    args = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield chromium.new_page(viewport={"width": 390, "height": 844})
        finally:
            chromium.close()


def one_guest(engine: str, url: str, folder: Path, seconds: float) -> dict[str, Any]:
    """Open, join, hear; then the page's click onsets for ``seconds`` (wall-clock ms)."""
    with browser_page(engine, folder) as page:
        opened = time.time()
        page.goto(url)
        page.wait_for_selector("#join:not([hidden])", timeout=20_000)
        page.fill("#name", f"Gus-{engine}")
        page.click("#join-button")
        page.wait_for_selector("#room:not([hidden])", timeout=20_000)
        in_room = time.time() - opened
        heard_ms = page.evaluate(FIRST_AUDIO_JS)
        page.evaluate(ONSETS_JS)
        begin = time.monotonic()
        time.sleep(seconds)
        onsets = page.evaluate("() => window.onsets")
        return {
            "in_room_s": in_room,
            "first_audio_s": heard_ms / 1000 - opened,
            "onsets": onsets,
            "window": (begin, time.monotonic()),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    options = parser.parse_args()
    results: dict[str, list[dict[str, Any]]] = {engine: [] for engine in ENGINES}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clicks = clicks_wav(folder / "clicks.wav")
        host = Proc(
            "--name", "Hana", "--home", str(folder / "hana"), "--host", "Engines",
            "--input", f"file:{clicks}?loop", "--output", "none", "--web",
            "--web-port", "0", "--web-https-port", "0",
            "--frame-log", str(folder / "host.json"), log=folder / "host.log",
        )  # fmt: skip
        web = host.wait_for("web")
        listener = Proc(
            "--name", "Lee", "--home", str(folder / "lee"), "--join", "Engines",
            "--input", "none", "--output", f"file:{folder / 'lee.wav'}",
            "--frame-log", str(folder / "lee.json"), log=folder / "lee.log",
        )  # fmt: skip
        listener.wait_for("joined")
        offset = time.time() - time.monotonic()
        try:
            for run in range(options.runs):
                for engine in ENGINES:  # interleaved: the machine's drift hits both alike
                    result = one_guest(engine, web["http"], folder, options.seconds)
                    results[engine].append(result)
                    print(
                        f"run {run + 1} {engine}: in the room {result['in_room_s']:.2f} s, "
                        f"first audio {result['first_audio_s']:.2f} s after opening",
                        flush=True,
                    )
        finally:
            listener.stop()
            host.stop()
        sent = send_times(folder / "host.json")
        node_heard = node_onsets(folder / "lee.wav", folder / "lee.json")
    print(f"\nmedian of {options.runs} runs per engine (spread: min-max of the run medians)")
    for engine in ENGINES:
        runs = results[engine]
        page_ms, node_ms = [], []
        for result in runs:
            begin, end = result["window"]
            heard = [o / 1000 - offset for o in result["onsets"]]
            page_ms.append(statistics.median([1000 * d for d in delays(heard, sent)] or [0]))
            node_window = [t for t in node_heard if begin <= t <= end]
            node_ms.append(statistics.median([1000 * d for d in delays(node_window, sent)] or [0]))

        def spread(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
            shown = [v * scale for v in values]
            return f"{statistics.median(shown):.2f} {unit} ({min(shown):.2f}-{max(shown):.2f})"

        print(
            f"{engine:9} in room {spread([r['in_room_s'] for r in runs])}; first audio "
            f"{spread([r['first_audio_s'] for r in runs])}; mouth-to-ear guest "
            f"{spread(page_ms, 'ms')} vs node listener {spread(node_ms, 'ms')} (same windows)"
        )


if __name__ == "__main__":
    main()
