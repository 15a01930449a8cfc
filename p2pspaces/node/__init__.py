"""The asyncio shell that runs one room session: :class:`Node` and its parts."""

from p2pspaces.node.directory import RoomListing
from p2pspaces.node.node import Node

__all__ = ["Node", "RoomListing"]
