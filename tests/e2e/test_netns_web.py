"""Browser guests, end to end: a real Chromium in one network namespace joins a Space hosted by
a node in another, through the web page that node serves (DESIGN.md section 5b)."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.analysis import align
from p2pspaces.audio.devices import load_audio

from .browser import chromium, join, phone, record
from .lan import Lan
from .test_netns_audio import speech

pytestmark = pytest.mark.netns

XSS = "<img src=x onerror=alert(1)>"


def test_a_phone_hears_chats_and_reacts_through_the_hosts_page(lan3: Lan, tmp_path: Path) -> None:
    clip_path = speech(tmp_path / "speech.wav")
    clip = load_audio(clip_path)
    hana = lan3.headless(
        0,
        tmp_path,
        "hana",
        "--host",
        "Browser night",
        "--input",
        f"file:{clip_path}?loop",
        "--output",
        "none",
    )
    try:
        web = hana.wait_for("web")
        assert web["http"] == f"http://{lan3.address(0)}:8480/"
        assert web["https"] == f"https://{lan3.address(0)}:8443/"
        assert len(web["cert_sha256"]) == 64
        with chromium(lan3.hosts[2], tmp_path) as browser:
            page = phone(browser)
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            join(page, web["http"], "Gus")
            joined = hana.wait_for("state", lambda e: any(m["name"] == "Gus" for m in e["members"]))
            assert joined["change"]["action"] == "join"
            # The page hears Hana: what it records matches her clip.
            heard = record(page, 2.5 * len(clip) / SAMPLE_RATE)
            alignment = align(heard, clip)
            assert alignment.correlation >= 0.8, alignment
            # Chat and reactions both ways; room text is shown as text, never as markup.
            page.fill("#chat-input", "hello from a phone")
            page.click("#chat-form button")
            said = hana.wait_for("chat", lambda e: e["name"] == "Gus")
            assert said["text"] == "hello from a phone"
            page.click("#reactions button >> nth=0")
            assert hana.wait_for("reaction", lambda e: e["name"] == "Gus")["emoji"] == "👏"
            hana.send(cmd="chat", text=XSS)
            page.wait_for_selector(f"#chat li:has-text('{XSS}')", timeout=10_000)
            assert page.locator("#chat img").count() == 0
            hana.send(cmd="react", emoji="fire")
            page.wait_for_selector("#chat li:has-text('🔥')", timeout=10_000)
            assert dialogs == []
            page.screenshot(path=str(tmp_path / "guest.png"))
    finally:
        assert hana.stop() == 0
