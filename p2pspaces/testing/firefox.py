"""A real Firefox (Debian's firefox-esr), on this host or inside a network namespace, driven
over WebDriver BiDi, the W3C protocol Firefox speaks natively (no geckodriver, no download).

In a namespace, Firefox listens for BiDi on the namespace's own loopback, which the driving
process cannot reach; a network namespace belongs to a thread, so a short-lived thread enters
the namespace, opens the connection there and hands the socket back (the socket stays in the
namespace it was made in).  The client knows the few commands the tests and benchmarks use; its
:class:`Tab` has the same few methods as a Playwright page, so shared page steps run on both.
Needs the ``websockets`` package (the ``test`` extra).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FIREFOX = "/usr/bin/firefox-esr"
CLONE_NEWNET = 0x40000000
BIDI_PORT = 9333
PREFS = {
    # A fake microphone, and no permission prompt (a headless browser cannot answer one).
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    # No first-run pages or updates; nothing that reaches for the internet.
    "browser.shell.checkDefaultBrowser": False,
    "app.update.disabledForTesting": True,
    "datareporting.policy.dataSubmissionEnabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
}
"""Everything else is Firefox's default: its ICE candidates hide the page's address behind
mDNS names (``media.peerconnection.ice.obfuscate_host_addresses``), as on a phone."""


def _socket_in(namespace: str | None, port: int) -> socket.socket:
    """A TCP connection to ``127.0.0.1:port`` inside ``namespace`` (or here, if None)."""
    if namespace is None:
        return socket.create_connection(("127.0.0.1", port), timeout=5)
    made: list[socket.socket | BaseException] = []

    def enter_and_connect() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{namespace}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            made.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except BaseException as exc:
            made.append(exc)

    thread = threading.Thread(target=enter_and_connect)  # dies with the namespace it entered
    thread.start()
    thread.join()
    result = made[0]
    if isinstance(result, BaseException):
        raise result
    return result


class BidiError(RuntimeError):
    """A BiDi command failed (or the page's script threw)."""


class Tab:
    """One Firefox tab, with the handful of page actions the browser tests share."""

    def __init__(self, browser: Firefox, context: str) -> None:
        self._browser = browser
        self.context = context

    def goto(self, url: str) -> None:
        self._browser.call(
            "browsingContext.navigate", context=self.context, url=url, wait="complete"
        )

    def reload(self) -> None:
        self._browser.call("browsingContext.reload", context=self.context, wait="complete")

    def evaluate(self, function: str, arg: Any = None) -> Any:
        """Call the page function ``function`` (JS source) with ``arg`` (JSON) and return its
        JSON result (awaited, if it returns a promise)."""
        expression = f"Promise.resolve(({function})({json.dumps(arg)})).then(JSON.stringify)"
        result = self._browser.call(
            "script.evaluate",
            expression=expression,
            target={"context": self.context},
            awaitPromise=True,
            userActivation=True,  # as a person's tap: the page may start sound
        )
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BidiError(f"page script failed: {details.get('text', details)}")
        value = result.get("result", {}).get("value")
        return None if value is None else json.loads(value)

    @property
    def url(self) -> str:
        return str(self.evaluate("() => location.href"))

    def wait_for_function(self, function: str, arg: Any = None, timeout: float = 15_000) -> Any:
        """Poll ``function(arg)`` until it returns something truthy (``timeout`` in ms)."""
        deadline = time.monotonic() + timeout / 1000
        truthy = f"async (arg) => !!(await ({function})(arg))"  # a MediaStream is not JSON
        while True:
            value = self.evaluate(truthy, arg)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} ms: {function}")
            time.sleep(0.1)

    def wait_for_selector(self, css: str, timeout: float = 15_000) -> None:
        self.wait_for_function("(css) => !!document.querySelector(css)", css, timeout)

    def fill(self, css: str, value: str) -> None:
        self.evaluate(
            """([css, value]) => {
                const box = document.querySelector(css);
                box.focus();
                box.value = value;
                box.dispatchEvent(new Event('input', {bubbles: true}));
            }""",
            [css, value],
        )

    def click(self, css: str) -> None:
        self.evaluate("(css) => document.querySelector(css).click()", css)


class Firefox:
    """A headless firefox-esr (in a network namespace, if given), with a BiDi session open."""

    def __init__(
        self, namespace: str | None, folder: Path, sound: dict[str, str] | None = None
    ) -> None:
        """``sound``: the environment of a sound server (:mod:`.pulse`): Firefox then plays to
        it and takes its default source as the microphone, instead of a fake one playing a
        tone (and without a sound device, Web Audio never starts)."""
        where = namespace or "here"
        profile = folder / f"firefox-{where}"
        profile.mkdir(parents=True, exist_ok=True)
        wanted = {**PREFS, "media.navigator.streams.fake": sound is None}
        prefs = "".join(f'user_pref("{k}", {json.dumps(v)});\n' for k, v in wanted.items())
        (profile / "user.js").write_text(prefs)
        self._log = (folder / f"firefox-{where}.log").open("w")
        inside = ["ip", "netns", "exec", namespace] if namespace else []
        self._proc = subprocess.Popen(
            [*inside, FIREFOX, "--headless", "--no-remote",
             "--profile", str(profile), "--remote-debugging-port", str(BIDI_PORT)],
            stdout=self._log, stderr=subprocess.STDOUT,
            env={**(sound or os.environ), "MOZ_CRASHREPORTER_DISABLE": "1"},
        )  # fmt: skip
        self._ids = itertools.count(1)
        self._stack = contextlib.ExitStack()
        try:
            self._ws = self._stack.enter_context(self._connect(namespace))
            capabilities = {"alwaysMatch": {"acceptInsecureCerts": True}}
            self.call("session.new", capabilities=capabilities)
            self.call("session.subscribe", events=["log.entryAdded"])
        except BaseException:
            self._stop()
            raise

    def _connect(self, namespace: str | None) -> Any:
        from websockets.sync.client import connect  # noqa: PLC0415 - a test-only dependency

        deadline = time.monotonic() + 30
        while True:
            try:
                sock = _socket_in(namespace, BIDI_PORT)
                return connect(f"ws://127.0.0.1:{BIDI_PORT}/session", sock=sock, max_size=None)
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its answer (events meanwhile are printed)."""
        number = next(self._ids)
        self._ws.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=60))
            if message.get("id") == number:
                if message.get("type") == "error":
                    raise BidiError(f"{method}: {message.get('message') or message}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if message.get("method") == "log.entryAdded":
                entry = message["params"]
                print("page console:", entry.get("level"), entry.get("text"))

    def new_page(self) -> Tab:
        context = self.call("browsingContext.create", type="tab")["context"]
        self.call(
            "browsingContext.setViewport",
            context=context,
            viewport={"width": 390, "height": 844},
            devicePixelRatio=2,
        )
        return Tab(self, context)

    def close(self) -> None:
        with contextlib.suppress(BidiError, OSError, TimeoutError):
            self.call("browser.close")
        self._stop()

    def _stop(self) -> None:
        self._stack.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._log.close()


class Unavailable(RuntimeError):
    """Firefox, or the websockets package, is not installed."""


@contextmanager
def firefox(
    namespace: str | None, folder: Path, sound: dict[str, str] | None = None
) -> Iterator[Firefox]:
    """A Firefox browser (in ``namespace``, if given; with a ``sound`` server's devices, if
    given); :class:`Unavailable` if it cannot run."""
    if shutil.which(FIREFOX) is None:
        raise Unavailable("Debian's firefox-esr is not installed (apt-get install firefox-esr)")
    try:
        import websockets  # noqa: F401, PLC0415 - optional until here
    except ImportError:
        raise Unavailable("websockets is not installed (pip install websockets)") from None
    browser = Firefox(namespace, folder, sound)
    try:
        yield browser
    finally:
        browser.close()
