#!/usr/bin/env python3
"""Browser guests: mouth-to-ear against a node listener in the same run, the gateway's CPU and
memory per guest at 1, 10 and 30 guests, and the time from opening the page to hearing audio.

Real processes on loopback: a host (``p2pspaces start --headless --web``) speaking a click every
second from a WAV, a node listener recording what it hears, and Debian's Chromium (through
Playwright) with up to 30 guest pages in one browser.

* Mouth-to-ear: from the click's 20 ms frame handed to the host's pipeline (its frame log) to
  the click leaving the listener's playout (the node: its recording and frame log; the page:
  an AnalyserNode on the received stream, polled every few ms, so add a few ms of
  uncertainty).  Times are CLOCK_MONOTONIC; the page's wall clock is mapped onto it.
* CPU and memory: the host process (the gateway) over ``--seconds`` with N guests listening,
  less the same with none; per guest.
* Join time: from ``page.goto`` (then typing a name and joining, as fast as a script can) to
  the page's first decoded audio (WebRTC stats: samples received), for the first 10 guests.

    python3 scripts/bench_web.py [--runs 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from playwright.async_api import Browser, Page, async_playwright

from p2pspaces.audio import FRAME_SAMPLES, SAMPLE_RATE
from p2pspaces.audio.devices import load_audio
from p2pspaces.testing.command import start_argv

LOOPBACK = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
CLICK_AT = SAMPLE_RATE // 2
"""The click's sample in each one-second loop of the source."""
GUEST_COUNTS = (1, 10, 30)

ONSETS_JS = """() => {
  const audio = document.getElementById('audio');
  const ctx = new AudioContext();
  ctx.resume();  // Firefox starts a context suspended unless told
  const source = ctx.createMediaStreamSource(audio.srcObject);
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 256;
  source.connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  window.onsets = [];
  let quietSince = 0;
  setInterval(() => {
    analyser.getFloatTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v));
    const now = performance.timeOrigin + performance.now();
    if (peak > 0.1) {
      if (quietSince && now - quietSince > 300) window.onsets.push(now);
      quietSince = 0;
    } else if (!quietSince) {
      quietSince = now;
    }
  }, 2);
}"""

FIRST_AUDIO_JS = """async () => {
  while (true) {
    const pc = window.p2pspaces && window.p2pspaces.pc;
    if (pc) {
      const stats = await pc.getStats();
      let heard = false;
      stats.forEach((r) => {
        const inbound = r.type === 'inbound-rtp';
        if (inbound && r.packetsReceived > 0 && r.totalSamplesReceived > 0) heard = true;
      });
      if (heard) return performance.timeOrigin + performance.now();
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}"""


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ms" if values else "n/a"


def clicks_wav(path: Path) -> Path:
    """One second of silence with a 10 ms, 2 kHz burst in the middle (looped by the host)."""
    samples = np.zeros(SAMPLE_RATE, dtype=np.float64)
    t = np.arange(SAMPLE_RATE // 100) / SAMPLE_RATE
    samples[CLICK_AT : CLICK_AT + len(t)] = 0.5 * np.sin(2 * np.pi * 2000 * t)
    import wave  # noqa: PLC0415

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


class Proc:
    """A headless node; its JSON events are read all the time (a full pipe would stall it)."""

    def __init__(self, *args: str, log: Path) -> None:
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            start_argv(*args, interface=LOOPBACK, headless=True),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put(json.loads(line))

    def wait_for(self, name: str, within: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                break
            if event["event"] == name:
                return event
        raise RuntimeError(f"no {name} event")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self._log.close()


def send_times(frame_log: Path, loops: int = 400) -> list[float]:
    """When each loop's click frame was handed to the host's pipeline (monotonic s)."""
    sent = {int(k): v for k, v in json.loads(frame_log.read_text())["sent"].items()}
    out = []
    for loop in range(loops):
        pts = (loop * SAMPLE_RATE + CLICK_AT) // FRAME_SAMPLES * FRAME_SAMPLES
        if pts in sent:
            out.append(sent[pts] + (CLICK_AT % FRAME_SAMPLES) / SAMPLE_RATE)
    return out


def delays(onsets: list[float], sent: list[float], skip: int = 2) -> list[float]:
    """Each heard click's delay from the latest click sent before it (the first ``skip``
    clicks meet a start-up jitter buffer)."""
    out = []
    for heard in onsets:
        before = [s for s in sent if s < heard]
        if before and heard - before[-1] < 0.5:
            out.append(heard - before[-1])
    return out[skip:]


def node_onsets(recording: Path, frame_log: Path) -> list[float]:
    """When the listener's playout let each click out (monotonic s)."""
    samples = load_audio(recording).astype(np.float64) / 32767
    ticks = json.loads(frame_log.read_text())["ticks"]
    loud = np.flatnonzero(np.abs(samples) > 0.1)
    onsets, last = [], -SAMPLE_RATE
    for index in loud:
        if index - last > 0.3 * SAMPLE_RATE:
            frame = index // FRAME_SAMPLES
            if frame < len(ticks):
                onsets.append(ticks[frame] + (index % FRAME_SAMPLES) / SAMPLE_RATE)
        last = int(index)
    return onsets


async def open_guest(browser: Browser, url: str, name: str) -> tuple[Page, float]:
    """A page that joins as ``name``; returns it and seconds from opening to first audio."""
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    opened = time.time()
    await page.goto(url)
    await page.wait_for_selector("#join:not([hidden])")
    await page.fill("#name", name)
    await page.click("#join-button")
    try:
        async with asyncio.timeout(30):
            heard_ms = await page.evaluate(FIRST_AUDIO_JS)
    except TimeoutError:
        why = await page.evaluate(
            "() => { const p = window.p2pspaces; return [p.me, p.pc && p.pc.connectionState,"
            " document.getElementById('notice').textContent]; }"
        )
        raise RuntimeError(f"{name} heard nothing in 30 s: {why}") from None
    return page, heard_ms / 1000 - opened


async def cpu_while(proc: Proc, seconds: float) -> float:
    start, t0 = proc.cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    return 100 * (proc.cpu_seconds() - start) / (time.monotonic() - t0)


async def one_run(folder: Path, seconds: float, counts: tuple[int, ...]) -> dict[str, Any]:
    clicks = clicks_wav(folder / "clicks.wav")
    host = Proc(
        "--name",
        "Hana",
        "--home",
        str(folder / "hana"),
        "--host",
        "Bench",
        "--input",
        f"file:{clicks}?loop",
        "--output",
        "none",
        "--web",
        "--web-port",
        "0",
        "--web-https-port",
        "0",
        "--max-guests",
        "40",
        "--frame-log",
        str(folder / "host.json"),
        log=folder / "host.log",
    )
    web = host.wait_for("web")
    listener = Proc(
        "--name",
        "Lee",
        "--home",
        str(folder / "lee"),
        "--join",
        "Bench",
        "--input",
        "none",
        "--output",
        f"file:{folder / 'lee.wav'}",
        "--frame-log",
        str(folder / "lee.json"),
        log=folder / "lee.log",
    )
    listener.wait_for("joined")
    result: dict[str, Any] = {}
    offset = time.time() - time.monotonic()
    async with async_playwright() as playwright:
        args = [
            "--no-sandbox",
            "--autoplay-policy=no-user-gesture-required",
            # The measuring page is soon behind 29 others: keep its timers running.
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
        ]
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        await asyncio.sleep(2)
        result["cpu_0"] = await cpu_while(host, seconds)
        result["rss_0"] = host.rss_mb()
        pages: list[Page] = []
        joins: list[float] = []
        phases: list[tuple[int, float, float]] = []
        for count in counts:
            while len(pages) < count:
                page, join_s = await open_guest(browser, web["http"], f"Guest{len(pages) + 1}")
                pages.append(page)
                joins.append(join_s)
                print(f"  guest {len(pages)} heard audio {join_s:.2f} s after opening", flush=True)
            if count == counts[0]:
                await pages[0].evaluate(ONSETS_JS)
            await asyncio.sleep(2)
            begin = time.monotonic()
            result[f"cpu_{count}"] = await cpu_while(host, seconds)
            result[f"rss_{count}"] = host.rss_mb()
            phases.append((count, begin, time.monotonic()))
            result["join_s"] = joins[:10]
        page_onsets = await pages[0].evaluate("window.onsets")
        await browser.close()
    listener.stop()
    host.stop()
    sent = send_times(folder / "host.json")
    heard = [o / 1000 - offset for o in page_onsets]
    node_heard = node_onsets(folder / "lee.wav", folder / "lee.json")
    for count, begin, end in phases:  # each figure from its own phase: load changes it
        page_phase = [t for t in heard if begin <= t <= end]
        node_phase = [t for t in node_heard if begin <= t <= end]
        result[f"browser_ms_{count}"] = [1000 * d for d in delays(page_phase, sent, skip=0)]
        result[f"node_ms_{count}"] = [1000 * d for d in delays(node_phase, sent, skip=0)]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--guests", type=int, nargs="+", default=list(GUEST_COUNTS))
    args = parser.parse_args()
    runs = []
    for run in range(args.runs):
        folder = tempfile.mkdtemp(prefix="bench-web-")
        counts = tuple(args.guests)
        result = asyncio.run(one_run(Path(folder), args.seconds, counts))  # logs kept if it fails
        shutil.rmtree(folder)
        runs.append(result)
        print(f"run {run + 1}: page to first audio {statistics.median(result['join_s']):.2f} s")
        base = result["cpu_0"]
        print(f"    0 guests: gateway CPU {base:5.1f}%, RSS {result['rss_0']:.1f} MB")
        for count in counts:
            cpu, rss = result[f"cpu_{count}"], result[f"rss_{count}"]
            node, browser = result[f"node_ms_{count}"], result[f"browser_ms_{count}"]
            print(
                f"   {count:2d} guests: gateway CPU {cpu:5.1f}% of a core "
                f"({(cpu - base) / count:4.2f}% per guest), RSS {rss:6.1f} MB "
                f"({(rss - result['rss_0']) / count:5.2f} MB per guest); mouth-to-ear: node "
                f"listener {median_ms(node)}, browser guest {median_ms(browser)} "
                f"({len(browser)} clicks)"
            )
    print("\nover the runs (median, min..max of each run's median):")

    def spread(key: str, fn: Any = statistics.median) -> str:
        values = [fn(r[key]) for r in runs if r[key]]
        if not values:
            return "n/a"
        return f"{statistics.median(values):.1f} ({min(values):.1f}..{max(values):.1f})"

    print(f"  page opened to first audio: {spread('join_s')} s")
    for count in counts:
        per = [(r[f"cpu_{count}"] - r["cpu_0"]) / count for r in runs]
        mem = [(r[f"rss_{count}"] - r["rss_0"]) / count for r in runs]
        print(
            f"  {count:2d} guests: mouth-to-ear node listener {spread(f'node_ms_{count}')} ms, "
            f"browser guest {spread(f'browser_ms_{count}')} ms; gateway "
            f"{statistics.median(per):.2f}% CPU per guest ({min(per):.2f}..{max(per):.2f}), "
            f"{statistics.median(mem):.2f} MB per guest"
        )


if __name__ == "__main__":
    main()
