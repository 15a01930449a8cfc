"""The pure core: identity, wire format, room state, rules, succession and the room session.

Nothing in this package opens a socket or a file, starts an event loop, reads the clock or
draws randomness; time arrives as a ``now`` argument.  ``tests/test_layering.py`` keeps it that
way.  Shells use :class:`~p2pspaces.core.session.RoomSession` and the records it speaks in.
"""
