"""The asyncio shell that runs one room session: :class:`Node`, its :class:`NodeConfig`, and
its parts."""

from p2pspaces.node.config import Faults, NodeConfig
from p2pspaces.node.directory import RoomListing
from p2pspaces.node.node import Node

__all__ = ["Faults", "Node", "NodeConfig", "RoomListing"]
