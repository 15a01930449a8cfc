"""The terminal app (Textual): lobby, room, dialogs."""
