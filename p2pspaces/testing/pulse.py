"""A PulseAudio sound server of our own, with null sinks instead of a sound card: real audio
devices for PortAudio and for browsers on a machine that has none.

``mic_feed`` is a sink whose monitor is the default source (play a file into it and every
microphone hears it); ``room_out`` is the default sink (what is played there can be recorded
from its monitor).  Clients reach the server through the environment it gives (a unix socket,
so network namespaces do not matter).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Unavailable(RuntimeError):
    """PulseAudio is not installed, or would not start."""


@contextmanager
def pulse_server(folder: Path) -> Iterator[dict[str, str]]:
    """Run a PulseAudio server until the block ends; yields the environment for its clients."""
    missing = [tool for tool in ("pulseaudio", "paplay", "pactl") if shutil.which(tool) is None]
    if missing:
        raise Unavailable(f"PulseAudio is not installed (missing {', '.join(missing)})")
    runtime = folder / "pulse"
    runtime.mkdir(parents=True, exist_ok=True)
    socket = runtime / "native"
    env = {
        **os.environ,
        "HOME": str(runtime),
        "XDG_RUNTIME_DIR": str(runtime),
        "PULSE_RUNTIME_PATH": str(runtime),
        "PULSE_SERVER": f"unix:{socket}",
    }
    log_path = runtime / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
             f"--load=module-native-protocol-unix socket={socket} auth-anonymous=1",
             "--load=module-null-sink sink_name=mic_feed rate=48000",
             "--load=module-null-sink sink_name=room_out rate=48000"],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 10
            while _pactl(env, "info"):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise Unavailable(f"PulseAudio did not start: {log_path.read_text()[-500:]}")
                time.sleep(0.1)
            _pactl(env, "set-default-source", "mic_feed.monitor")
            _pactl(env, "set-default-sink", "room_out")
            yield env
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _pactl(env: dict[str, str], *args: str) -> int:
    return subprocess.run(["pactl", *args], env=env, capture_output=True, check=False).returncode


@contextmanager
def playing(env: dict[str, str], wav: Path, sink: str = "mic_feed") -> Iterator[None]:
    """Play ``wav`` into ``sink`` over and over until the block ends (a talker at the mic)."""
    loop = f'while paplay --device={sink} "$0"; do :; done'
    player = subprocess.Popen(["sh", "-c", loop, str(wav)], env=env, start_new_session=True)
    try:
        yield
    finally:
        os.killpg(player.pid, 15)
        player.wait()
