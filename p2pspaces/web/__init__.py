"""The web gateway: any node of a Space serves it to the browsers near it (docs/DESIGN.md 5b)."""
