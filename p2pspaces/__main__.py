"""Allow ``python -m p2pspaces``."""

from p2pspaces.app.cli import main

main()
