"""The chat line: one line on screen, several lines of chat.

Textual's :class:`~textual.widgets.Input` is one line and keeps only the first line of a
paste.  Here a line break (pasted, or typed with Shift+Enter or Ctrl+J) is kept and shown as
:data:`BREAK`; the text sent has real line breaks again.  Nothing pasted is dropped.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.widgets import Input

BREAK = "↵"
"""How a line break looks in the chat line."""


def shown(text: str) -> str:
    """Chat text as the one-line box shows it."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", BREAK)


def sent(value: str) -> str:
    """The box's text as chat: line breaks back, blank lines at either end dropped."""
    return value.replace(BREAK, "\n").strip()


class ChatLine(Input):
    """An :class:`Input` that keeps line breaks (see the module's docs)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("shift+enter,ctrl+j", "line_break", "New line", show=False),
    ]

    def _on_paste(self, event: events.Paste) -> None:
        if event.text:
            selection = self.selection
            if selection.is_empty:
                self.insert_text_at_cursor(shown(event.text))
            else:
                self.replace(shown(event.text), *selection)
        event.stop()
        event.prevent_default()  # Input's own handler would paste the first line again

    def action_line_break(self) -> None:
        """Start a new line in the same message."""
        self.insert_text_at_cursor(BREAK)
