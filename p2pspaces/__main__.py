"""Allow ``python -m p2pspaces``."""

from p2pspaces.cli import main

main()
