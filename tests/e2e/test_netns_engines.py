"""The guest flow in every browser engine, each with its default settings: a phone opens the
secure page, joins, hears the room (and says so: the speaker sees "heard by"), goes on stage
and is heard by a node.

Firefox (like Safari, and Chromium before a page may use the microphone) hides the page's own
address behind an mDNS name in its ICE candidates; the node looks the name up with its own mDNS
(docs/DESIGN.md section 5b).  Chromium's fake microphone plays the speech clip; Firefox's would only
play a tone, so Firefox gets real devices instead: a PulseAudio server of the test's own, whose
microphone hears the clip played into it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from p2pspaces.audio import SAMPLE_RATE
from p2pspaces.audio.devices import load_audio
from p2pspaces.testing.lan import Lan
from p2pspaces.testing.pulse import Unavailable as PulseUnavailable
from p2pspaces.testing.pulse import playing, pulse_server
from p2pspaces.testing.signals import speech

from ..needs import unavailable
from .browser import accessibility_problems, chromium, click_text, join, match, phone, record
from .firefox import firefox

pytestmark = pytest.mark.netns


@contextmanager
def _open(engine: str, namespace: str, folder: Path, mic: Path) -> Iterator[Any]:
    """A browser whose microphone plays ``mic``."""
    if engine == "chromium":
        with chromium(namespace, folder, mic=mic) as browser:
            yield browser
        return
    try:
        with (
            pulse_server(folder) as sound,
            playing(sound, mic),
            firefox(namespace, folder, sound) as browser,
        ):
            yield browser
    except PulseUnavailable as exc:
        unavailable(str(exc))


def _page(engine: str, browser: Any) -> Any:
    return phone(browser) if engine == "chromium" else browser.new_page()


def _member(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in state["members"] if m["name"] == name)


@pytest.mark.parametrize("engine", ["chromium", "firefox"])
def test_a_phone_hears_and_is_heard_in_every_engine(engine: str, lan3: Lan, tmp_path: Path) -> None:
    clip_path = speech(tmp_path / "speech.wav")
    clip = load_audio(clip_path)
    hana = lan3.headless(
        0, tmp_path, "hana", "--host", f"Every engine: {engine}",
        "--input", f"file:{clip_path}?loop", "--output", f"file:{tmp_path / 'hana.wav'}",
    )  # fmt: skip
    try:
        web = hana.wait_for("web")
        with _open(engine, lan3.hosts[2], tmp_path, clip_path) as browser:
            page = _page(engine, browser)
            join(page, web["https"], "Gus")  # the secure page: it may use the microphone
            # The page reports how loud it plays the room: Hana sees that her guest hears her
            # (and the room's audio has settled into the page's playout before it is recorded).
            told = hana.wait_for("heard_by", lambda e: e["of"] == 1, within=15)
            assert (told["heard"], told["deaf"], told["quiet"]) == (1, [], [])
            heard = record(page, 2.5 * len(clip) / SAMPLE_RATE)
            hears = match(heard, clip)
            assert hears >= 0.8, f"{engine}: the page hears the room at {hears:.2f}"
            click_text(page, "Raise hand")
            hana.wait_for("state", lambda e: bool(_member(e, "Gus")["hand"]))
            hana.send(cmd="request", action="accept_hand", target="Gus")
            page.wait_for_selector("#headphones", timeout=10_000)
            page.evaluate("() => { const box = document.getElementById('headphones');"
                          " if (!box.checked) box.click(); }")  # fmt: skip
            hana.wait_for("speaking", lambda e: e["name"] == "Gus", within=20)
            time.sleep(2.5 * len(clip) / SAMPLE_RATE)
    finally:
        assert hana.stop() == 0
    from_guest = load_audio(tmp_path / "hana.wav")
    assert len(from_guest) > SAMPLE_RATE, "the node heard nothing from the guest"
    heard_guest = match(from_guest, clip)
    assert heard_guest >= 0.8, f"{engine}: the node hears the guest at {heard_guest:.2f}"


def test_the_join_and_room_pages_have_no_serious_accessibility_problem(
    lan3: Lan, tmp_path: Path
) -> None:
    """axe-core on the join page and the room page, light and dark."""
    hana = lan3.headless(
        0, tmp_path, "hana", "--host", "Accessible", "--input", "none", "--output", "none"
    )
    try:
        web = hana.wait_for("web")
        with chromium(lan3.hosts[2], tmp_path) as browser:
            page = phone(browser)
            page.goto(web["http"])
            page.wait_for_selector("#join:not([hidden])", timeout=15_000)
            found = {}
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                found[f"join page, {scheme}"] = accessibility_problems(page)
            join(page, web["http"], "Gus")
            hana.send(cmd="chat", text="hello")  # the chat log has a line to scroll
            page.wait_for_selector("#chat li", timeout=10_000)
            for scheme in ("light", "dark"):
                page.emulate_media(color_scheme=scheme)
                found[f"room page, {scheme}"] = accessibility_problems(page)
            assert not any(found.values()), found
    finally:
        assert hana.stop() == 0


def _in_room(page: Any) -> None:
    page.wait_for_selector("#room:not([hidden])", timeout=15_000)


def test_the_page_has_no_dead_ends(lan3: Lan, tmp_path: Path) -> None:
    """Names are checked in words; namesakes carry fingerprints; Leave offers Join again; a
    second tab takes over without a fight; a closed tab leaves at once; a blocked guest is
    told on arrival."""
    hana = lan3.headless(
        0, tmp_path, "hana", "--host", "No dead ends", "--input", "none", "--output", "none"
    )
    try:
        web = hana.wait_for("web")
        with chromium(lan3.hosts[2], tmp_path) as browser:
            phone_a = browser.new_context(viewport={"width": 390, "height": 844})
            gus = phone_a.new_page()
            gus.goto(web["http"])
            gus.wait_for_selector("#join:not([hidden])", timeout=15_000)
            for name, words in (
                ("\u200b\u200b", "needs at least one visible character"),
                ("Gus\u202e", "cannot contain invisible or control characters"),
            ):
                gus.fill("#name", name)
                gus.click("#join-button")
                gus.wait_for_selector(f"#notice:has-text('{words}')", timeout=5_000)
            gus.fill("#name", "Gus")
            gus.click("#join-button")
            _in_room(gus)
            first = hana.wait_for("state", lambda e: len(e["members"]) == 2)
            gus_print = next(m["fingerprint"] for m in first["members"] if m["name"] == "Gus")
            hana.send(cmd="chat", text="said once")
            gus.wait_for_selector("#chat li:has-text('said once')", timeout=10_000)
            # Reading back, nobody is yanked down by a new line: a cue says there is more.
            hana.send(cmd="chat", text="\n".join(f"line {i}" for i in range(40)))
            gus.wait_for_selector("#chat li:has-text('line 39')", timeout=10_000)
            gus.evaluate("() => { document.getElementById('chat').scrollTop = 0; }")
            hana.send(cmd="chat", text="while you read")
            gus.wait_for_selector("#new-chat:not([hidden])", timeout=10_000)
            assert gus.evaluate("() => document.getElementById('chat').scrollTop") == 0
            gus.click("#new-chat")
            gus.wait_for_selector("#new-chat[hidden]", state="attached", timeout=5_000)

            # Another phone, another Gus: each shows with its fingerprint.
            twin = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            join(twin, web["http"], "Gus")
            state = hana.wait_for("state", lambda e: len(e["members"]) == 3)
            prints = sorted(m["fingerprint"] for m in state["members"] if m["name"] == "Gus")
            for fingerprint in prints:
                gus.wait_for_selector(f"#audience .fp:text-is('{fingerprint}')", timeout=10_000)

            # Leave is not a dead end.
            click_text(gus, "Leave")
            gus.wait_for_selector("#notice:has-text('You left the Space.')", timeout=10_000)
            assert gus.inner_text("#subtitle") == "You are not in the Space now."
            hana.wait_for("state", lambda e: e["change"]["action"] == "leave")
            gus.click("#again-button")
            _in_room(gus)
            hana.wait_for("state", lambda e: len(e["members"]) == 3)  # back in
            assert gus.locator("#chat li:has-text('said once')").count() == 1

            # A second tab of the same phone takes over; the first stops and stays stopped.
            second = phone_a.new_page()
            second.goto(web["http"])
            _in_room(second)
            gus.wait_for_selector("#notice:has-text('open in another tab')", timeout=10_000)
            second.wait_for_timeout(3000)
            assert second.locator("#notice:has-text('Lost the connection')").count() == 0
            assert second.locator("#notice:has-text('open in another tab')").count() == 0
            assert second.locator("#chat li:has-text('said once')").count() == 1

            # Closing the tab (navigating away) leaves now, not after the node's grace.
            second.goto("about:blank")
            gone = hana.wait_for(
                "state", lambda e: sum(m["name"] == "Gus" for m in e["members"]) == 1, within=5
            )
            assert gone["change"]["action"] == "drop"  # by its node at once, not after the grace

            # A blocked guest who comes back is told before trying.
            [twin_print] = [fingerprint for fingerprint in prints if fingerprint != gus_print]
            hana.send(cmd="request", action="block", target=twin_print)
            twin.wait_for_selector("#notice:has-text('blocked')", timeout=10_000)
            twin.reload()
            twin.wait_for_selector("#notice:has-text('A host blocked you')", timeout=15_000)
            assert twin.locator("#join-form").is_hidden()
    finally:
        assert hana.stop() == 0
