"""Browser guests, end to end: a real Chromium in one network namespace joins a Space hosted by
a node in another, through the web page that node serves (docs/DESIGN.md section 5b)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.analysis import align
from p2pspaces.audio.devices import load_audio
from p2pspaces.testing.lan import Lan
from p2pspaces.testing.signals import speech

from ..audio.signals import dominant_hz, write_wav
from .browser import chromium, join, match, phone, record

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
            assert match(heard, clip) >= 0.8
            # Hana turned down to 0% on this phone only: it hears (almost) nothing of her.
            page.click("#volumes summary")
            page.fill("input[aria-label='Volume of hana']", "0")
            page.dispatch_event("input[aria-label='Volume of hana']", "input")
            page.wait_for_timeout(500)
            quiet = record(page, 2.0)
            assert np.sqrt(np.mean(quiet.astype(float) ** 2)) < 0.05 * np.sqrt(
                np.mean(heard.astype(float) ** 2)
            )
            page.fill("input[aria-label='Volume of hana']", "100")
            page.dispatch_event("input[aria-label='Volume of hana']", "input")
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
            # Accepted on the plain page, the guest moves to the secure one to speak: the same
            # key and the same place on stage (the key goes along in the address's fragment).
            gus_id = _member(hana.current_state(), "Gus")["id"]
            page.click("text=Raise hand")
            hana.wait_for("state", lambda e: bool(_member(e, "Gus")["hand"]))
            hana.send(cmd="request", action="accept_hand", target="Gus")
            page.click("text=Open the secure page to speak")
            # First a word on the certificate warning to come, with the fingerprint to compare.
            shown = page.inner_text("#secure-note-fp").replace(":", "").replace("\u200b", "")
            shown = shown.lower()
            assert shown == web["cert_sha256"]
            page.click("#secure-note-go")
            page.wait_for_selector("text=You are on stage", timeout=15_000)
            assert page.url.startswith(web["https"])
            assert "seed" not in page.url
            assert page.evaluate("window.isSecureContext")
            hana.send(cmd="state")  # (current_state waits for a quiet moment: Gus is talking)
            gus = _member(hana.wait_for("state"), "Gus")
            assert (gus["id"], gus["role"]) == (gus_id, "speaker")
    finally:
        assert hana.stop() == 0


FORGE_JS = """async ([kind, target]) => {
  const p = window.p2pspaces, w = p.wire;
  const [room, epoch] = [w.unhex(p.state.room.id), p.state.room.epoch];
  const request = w.request(room, epoch, Date.now(), kind, target ? w.unhex(target) : null);
  if (kind === 'leave') {  // signed by a key that is not this guest's
    const stranger = await w.keyFromSeed('11'.repeat(32));
    p.conn.ws.send(await w.seal(stranger, request));
  } else {
    p.conn.ws.send(await w.seal(p.key, request));
  }
}"""


def _member(state: dict[str, object], name: str) -> dict[str, object]:
    members = state["members"]
    assert isinstance(members, list)
    return next(m for m in members if m["name"] == name)


def test_a_phone_speaks_through_one_node_and_is_heard_through_another(
    lan3: Lan, tmp_path: Path
) -> None:
    clip_path = speech(tmp_path / "speech.wav")
    clip = load_audio(clip_path)
    hana = lan3.headless(
        0, tmp_path, "hana", "--host", "Phones on stage", "--input", "none", "--output", "none"
    )
    nodes = [hana]
    try:
        hana.wait_for("joined")
        hana_web = hana.wait_for("web")  # a host serves browsers once its room is up
        bob = lan3.headless(
            1,
            tmp_path,
            "bob",
            "--join",
            "Phones on stage",
            "--web",
            "--input",
            "none",
            "--output",
            f"file:{tmp_path / 'bob.wav'}",
        )
        nodes.append(bob)
        bob_web = bob.wait_for("web")
        bob.wait_for("joined")
        with chromium(lan3.hosts[2], tmp_path, mic=clip_path) as browser:
            gus = phone(browser)
            join(gus, hana_web["https"], "Gus")  # the secure page: it may use the microphone
            gia = phone(browser)
            join(gia, bob_web["http"], "Gia")  # the plain page, through Bob's node
            state = hana.wait_for("state", lambda e: len(e["members"]) == 4)
            gus_id = _member(state, "Gus")["id"]
            gus.click("text=Raise hand")
            hana.wait_for("state", lambda e: bool(_member(e, "Gus")["hand"]))
            hana.send(cmd="request", action="accept_hand", target="Gus")
            gus.wait_for_selector("text=You are on stage", timeout=10_000)
            gus.check("#headphones")  # no echo filter: the fake microphone's clip goes as it is
            bob.wait_for("speaking", lambda e: e["name"] == "Gus", within=20)
            # Gia, on another gateway, hears Gus too.
            heard = record(gia, 2.5 * len(clip) / SAMPLE_RATE)
            write_wav(tmp_path / "gia.wav", heard / 32767)
            gia_match = match(heard, clip)
            # A listener's page cannot mute anyone; a request signed by another key is refused.
            gia.evaluate(FORGE_JS, ["mute", gus_id])
            gia.wait_for_selector("#notice:has-text('only the host or a co-host')", timeout=10_000)
            gia.evaluate(FORGE_JS, ["leave", None])
            gia.wait_for_selector("#notice:has-text('signed by an unexpected key')", timeout=10_000)
            assert _member(bob.current_state(), "Gia")["role"] == "listener"
            # Muted: Bob stops hearing Gus.
            hana.send(cmd="request", action="mute", target="Gus")
            bob.wait_for("quiet", lambda e: e["name"] == "Gus", within=10)
            gus.wait_for_selector("text=You are on stage, muted", timeout=10_000)
            # Blocked: the page says so and cannot come back.
            hana.send(cmd="request", action="block", target="Gus")
            gus.wait_for_selector("#notice:has-text('blocked')", timeout=10_000)
            gus.reload()  # told on arrival, with no way to try
            gus.wait_for_selector("#notice:has-text('A host blocked you')", timeout=15_000)
            assert gus.locator("#join-form").is_hidden()
            state = hana.current_state()
            assert gus_id in state["blocked"]
            assert all(m["name"] != "Gus" for m in state["members"])
            hashes = {node.current_state()["hash"] for node in nodes}
            assert len(hashes) == 1
    finally:
        statuses = [node.stop() for node in reversed(nodes)]
    assert statuses == [0] * len(nodes)
    recording = load_audio(tmp_path / "bob.wav")
    alignment = align(recording, clip)
    assert alignment.correlation >= 0.8, alignment
    assert gia_match >= 0.8


def test_a_full_node_sends_phones_to_another_and_a_lost_page_costs_only_its_guest(
    lan3: Lan, tmp_path: Path
) -> None:
    hana = lan3.headless(
        0,
        tmp_path,
        "hana",
        "--host",
        "Busy night",
        "--max-guests",
        "1",
        "--guest-grace",
        "2",
        "--input",
        "none",
        "--output",
        "none",
    )
    nodes = [hana]
    try:
        hana.wait_for("joined")
        hana_web = hana.wait_for("web")
        bob = lan3.headless(
            1,
            tmp_path,
            "bob",
            "--join",
            "Busy night",
            "--web",
            "--input",
            "none",
            "--output",
            "none",
        )
        nodes.append(bob)
        bob_web = bob.wait_for("web")
        bob.wait_for("joined")
        with chromium(lan3.hosts[2], tmp_path) as browser:
            ann = phone(browser)
            join(ann, hana_web["http"], "Ann")
            # Hana serves one browser at most: the next page goes on to Bob's node by itself.
            cal = phone(browser)  # another phone: a context of its own, its own key
            cal.goto(hana_web["http"])
            cal.wait_for_selector("#notice:has-text('already serves 1 guests')", timeout=15_000)
            cal.wait_for_url(f"{bob_web['http']}*", timeout=15_000)
            cal.wait_for_selector("#join:not([hidden])", timeout=15_000)
            cal.fill("#name", "Cal")
            cal.click("#join-button")
            cal.wait_for_selector("#room:not([hidden])", timeout=15_000)
            state = hana.wait_for(
                "state", lambda e: {m["name"] for m in e["members"]} >= {"Ann", "Cal"}
            )
            gateways = {m["name"]: m["gateway"] for m in state["members"]}
            assert gateways["Ann"] != gateways["Cal"]
            assert gateways["hana"] is None and gateways["bob"] is None
            # Cal's page goes away: after the grace Cal is out, Ann is not.
            cal.close()
            hana.wait_for(
                "state", lambda e: all(m["name"] != "Cal" for m in e["members"]), within=30
            )
            ann.fill("#chat-input", "still here")
            ann.click("#chat-form button")
            assert hana.wait_for("chat", lambda e: e["name"] == "Ann")["text"] == "still here"
    finally:
        statuses = [node.stop() for node in reversed(nodes)]
    assert statuses == [0] * len(nodes)


def test_a_phone_carries_on_through_a_cohost_when_the_hosts_laptop_dies(
    lan3: Lan, tmp_path: Path
) -> None:
    hana = lan3.headless(
        0, tmp_path, "hana", "--host", "Sudden stop", "--input", "none", "--output", "none"
    )
    nodes = [hana]
    try:
        hana.wait_for("joined")
        hana_web = hana.wait_for("web")
        bob = lan3.headless(
            1, tmp_path, "bob", "--join", "Sudden stop", "--input", "tone:330", "--output", "none"
        )
        nodes.append(bob)
        bob.wait_for("joined")
        hana.send(cmd="request", action="add_cohost", target="bob")
        bob_web = bob.wait_for("web")  # a co-host serves browsers too, by default
        with chromium(lan3.hosts[2], tmp_path) as browser:
            page = phone(browser)
            join(page, hana_web["http"], "Gus")
            bob.wait_for("state", lambda e: any(m["name"] == "Gus" for m in e["members"]))
            hana.proc.kill()  # the host's laptop dies
            page.wait_for_url(f"{bob_web['http']}*", timeout=30_000)
            # Bob took over; Gus is back in, through Bob's node, and hears Bob's tone.
            bob.wait_for(
                "state",
                lambda e: any(
                    m["name"] == "Gus" and m["gateway"] == e["authority"] for m in e["members"]
                ),
                within=30,
            )
            page.wait_for_selector("#room:not([hidden])", timeout=15_000)
            heard = record(page, 2.0)
            assert abs(dominant_hz(heard) - 330) < 10
    finally:
        statuses = [node.stop() for node in reversed(nodes)]
    assert statuses[0] == 0  # Bob's node left cleanly (Hana's was killed)
