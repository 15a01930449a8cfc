"""The room's audio for a gateway's browser guests: one mix, encoded once for all listeners.

Why a mix and not each speaker's packets forwarded: a page then needs one audio track whatever
the number of speakers (no renegotiation when the stage changes, one jitter buffer and one
decoder on a phone), and the gateway encodes once for all its listening guests however many
there are, so its cost per extra guest is packetising only.  The price is one extra
decode/mix/encode (the gateway decodes every speaker for its own playout anyway) and the
gateway's jitter buffer in the path; scripts/bench_web.py measures the delay against a node
listener.  A guest on stage gets a mix without its own voice (encoded for it alone), so it
never hears itself back; a guest who set someone's volume (the page's sliders, like the app's
+/-) gets a mix of its own too.
"""

from __future__ import annotations

from collections.abc import Mapping

from p2pspaces.audio import FRAME_SAMPLES
from p2pspaces.audio.fanout import PacketTrack
from p2pspaces.audio.mixer import mix
from p2pspaces.audio.opus import Encoder, Pcm
from p2pspaces.core.identity import NodeId

BITRATE = 32_000
VOLUME_MAX = 2.0
VOLUMES_MAX = 64
"""People one guest may set a volume for (the rest stay at 100%)."""


class GuestMixer:
    """Mixes each tick's frames for the guests and queues the packets on their tracks."""

    def __init__(self, me: bytes = b"") -> None:
        """``me``: the gateway node's key (its own voice is ``own`` in :meth:`feed`)."""
        self._me = me
        self._shared = Encoder(BITRATE)
        self._own: dict[bytes, Encoder] = {}
        self._volumes: dict[bytes, dict[bytes, float]] = {}
        self._pts = 0
        self.encoded = 0

    def feed(
        self, frames: list[tuple[bytes, Pcm]], own: Pcm | None, tracks: Mapping[NodeId, PacketTrack]
    ) -> None:
        """One 20 ms tick: ``frames`` are the streams played here (guests' voices included),
        ``own`` this node's voice if it speaks."""
        pts, self._pts = self._pts, self._pts + FRAME_SAMPLES
        sources = [(frame, 1.0) for _, frame in frames]
        if own is not None:
            sources.append((own, 1.0))
        speaking = {key for key, _ in frames}
        shared: bytes | None = None
        for key, track in tracks.items():
            volumes = self._volumes.get(key)
            if key in speaking or volumes:
                gain = (volumes or {}).get
                own_mix = [(f, gain(k, 1.0)) for k, f in frames if k != key]
                if own is not None:
                    own_mix.append((own, gain(self._me, 1.0)))
                encoder = self._own.get(key)
                if encoder is None:
                    encoder = self._own[key] = Encoder(BITRATE)
                track.offer(encoder.encode(mix(own_mix)), pts)
                self.encoded += 1
            else:
                if shared is None:
                    shared = self._shared.encode(mix(sources))
                    self.encoded += 1
                track.offer(shared, pts)

    def set_volume(self, guest: bytes, source: bytes, gain: float) -> float:
        """How loud ``guest`` hears ``source`` (0 to VOLUME_MAX; 1 is as spoken); the gain
        kept.  Beyond VOLUMES_MAX people, a guest's further settings are not kept."""
        gain = min(max(gain, 0.0), VOLUME_MAX)
        volumes = self._volumes.setdefault(guest, {})
        if gain == 1.0:
            volumes.pop(source, None)
        elif source in volumes or len(volumes) < VOLUMES_MAX:
            volumes[source] = gain
        else:
            gain = 1.0
        if not volumes:
            del self._volumes[guest]
        return gain

    def forget(self, key: bytes) -> None:
        """A guest's page is gone."""
        self._own.pop(key, None)
        self._volumes.pop(key, None)
