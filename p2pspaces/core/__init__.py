"""The pure core: identity, wire format, room state and succession.

Nothing in this package opens a socket, starts an event loop or reads the clock; time arrives
as a ``now`` argument in milliseconds.  ``tests/test_layering.py`` keeps it that way.
"""
