"""Faces for people and scripts: the ``p2pspaces`` command, the console (readable lines or
JSON), the demo and the room list."""
