"""A real Chromium (Debian's, driven by Playwright) inside one of the Lan's network namespaces,
and the page steps every engine's tests share (:mod:`.firefox` drives Firefox with the same
few page methods: ``goto``, ``fill``, ``click``, ``wait_for_selector``, ``evaluate``).

Playwright talks to the browser over pipes, so a wrapper that starts ``chromium`` under
``ip netns exec`` puts the browser on the namespace's network while Playwright stays outside.
"""

from __future__ import annotations

import base64
import io
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import numpy as np

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.analysis import chunk_correlations

from ..needs import unavailable

CHROMIUM = "/usr/bin/chromium"

RECORD_JS = """async (seconds) => {
  const stream = document.getElementById('audio').srcObject;
  const mimeType = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus']
    .find((type) => MediaRecorder.isTypeSupported(type));
  const recorder = new MediaRecorder(stream, {mimeType});
  const chunks = [];
  recorder.ondataavailable = (e) => chunks.push(e.data);
  recorder.start();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const stopped = new Promise((r) => { recorder.onstop = r; });
  recorder.stop();
  await stopped;
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return btoa(text);
}"""


def _wrapper(namespace: str, folder: Path) -> Path:
    script = folder / f"chromium-{namespace}.sh"
    script.write_text(f'#!/bin/sh\nexec ip netns exec {namespace} {CHROMIUM} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@contextmanager
def chromium(namespace: str, folder: Path, *, mic: Path | None = None) -> Iterator[Any]:
    """A Chromium browser in ``namespace`` (a fake microphone playing ``mic`` if given)."""
    if shutil.which(CHROMIUM) is None:
        unavailable("Debian's chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - optional until here
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    args = [
        "--no-sandbox",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--ignore-certificate-errors",
    ]
    if mic is not None:
        args.append(f"--use-file-for-fake-audio-capture={mic}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(_wrapper(namespace, folder)), args=args
        )
        try:
            yield browser
        finally:
            browser.close()


def phone(browser: Any) -> Any:
    """A new page the size of a phone's screen, logging its console for the test's output."""
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page.on("console", lambda m: print("page console:", m.type, m.text))
    page.on("pageerror", lambda e: print("page error:", e))
    return page


def record(page: Any, seconds: float) -> np.ndarray:
    """What the page hears for ``seconds`` (its audio element's stream), as 48 kHz mono int16."""
    page.wait_for_function("() => document.getElementById('audio').srcObject", timeout=15_000)
    data = base64.b64decode(page.evaluate(RECORD_JS, seconds))
    container = av.open(io.BytesIO(data))  # WebM from Chromium, Ogg from Firefox
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks = []
    for frame in container.decode(audio=0):
        for out in resampler.resample(frame):
            chunks.append(out.to_ndarray().reshape(-1))
    container.close()
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def match(heard: np.ndarray, clip: np.ndarray) -> float:
    """How well what a page heard matches ``clip``: the median of each second of the clip
    aligned on its own.  Chromium's jitter buffer (NetEq) stretches and squeezes time when
    packets bunch (a busy machine), so one global alignment would count a faithful but
    stretched copy as a mismatch; per second, the words either are there or are not."""
    scores = chunk_correlations(heard, clip)
    return float(np.median(scores)) if scores else 0.0


def join(page: Any, url: str, name: str) -> None:
    """Open the page at ``url`` and join as ``name``."""
    page.goto(url)
    page.wait_for_selector("#join:not([hidden])", timeout=15_000)
    page.fill("#name", name)
    page.click("#join-button")
    page.wait_for_selector("#room:not([hidden])", timeout=15_000)


CLICK_TEXT_JS = """(text) => {
  const found = [...document.querySelectorAll('button, a')]
    .find((el) => !el.closest('[hidden]') && el.textContent.includes(text));
  if (found) found.click();
  return !!found;
}"""


def click_text(page: Any, text: str, timeout: float = 15_000) -> None:
    """Click the visible button or link whose text contains ``text`` (any engine)."""
    page.wait_for_function(CLICK_TEXT_JS, arg=text, timeout=timeout)


AXE = Path(__file__).parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN_JS = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help}: ` +
         v.nodes.map((n) => n.target.join(' ')).join(', '));
}"""


def accessibility_problems(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not AXE.exists():
        unavailable("axe-core is not installed (npm ci --prefix tests/e2e/js)")
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # a script, not a function: past the page's CSP
    problems: list[str] = page.evaluate(AXE_RUN_JS)
    return problems
