"""A dialog's dimmed view of the screen beneath it, built strip by strip, each style blended once.

A ModalScreen paints the screen under it, tinted by its translucent background.  Textual does that
through Rich: the screen beneath rendered to strips, streamed as segments, each segment's colours
blended with the tint, the stream styled again and cut back into lines; 7.4 ms for a 200×50 main view
(800 segments, 360 distinct styles), repeated on each of the dialog's full paints.  Here each strip
beneath becomes a dimmed strip directly, and each distinct style is blended once (by Textual's own
``BackgroundScreen.process_segments``, so the colours are the same) and kept by the dialog for its next
paint (the widgets beneath keep their rendered lines, and so their styles): 3.2 ms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.color import Color
from textual.renderables.background_screen import BackgroundScreen
from textual.strip import Strip
from textual.visual import RenderOptions, Visual

if TYPE_CHECKING:
    from rich.console import RenderableType
    from textual.css.styles import RulesMap
    from textual.screen import Screen
    from textual.style import Style


# Styles remembered per dialog: a few hundred on the main view (each widget's lines carry their own).
MAX_BLENDED = 4096


class DimmedScreen(Visual):
    """What ``BackgroundScreen`` renders (then styled by the dialog's own style, as Textual's
    ``_Styled`` does), built strip by strip from the screen beneath."""

    def __init__(self, screen: Screen[Any], tint: Color, blended: dict[Any, RichStyle]) -> None:
        self.screen = screen
        self.tint = tint
        self.blended = blended  # (dialog style, tint, style beneath) -> what is painted

    def get_optimal_width(self, rules: RulesMap, container_width: int) -> int:
        return self.screen.size.width

    def get_height(self, rules: RulesMap, width: int) -> int:
        return self.screen.size.height

    def render_strips(
        self, width: int, height: int | None, style: Style, options: RenderOptions
    ) -> list[Strip]:
        base = style.rich_style
        tint = self.tint
        if len(self.blended) > MAX_BLENDED:
            self.blended.clear()
        blended = self.blended

        def dimmed(original: RichStyle | None) -> RichStyle:
            (segment,) = BackgroundScreen.process_segments([Segment(" ", original)], tint)
            return base + segment.style if base else segment.style or RichStyle()

        strips = []
        for strip in self.screen._compositor.render_strips()[:height]:
            segments = []
            for text, segment_style, _control in strip:
                key = (base, tint, segment_style)
                dim = blended.get(key)
                if dim is None:
                    dim = blended[key] = dimmed(segment_style)
                segments.append(Segment(text, dim))
            strips.append(Strip(segments).crop(0, width))
        return strips


class DimmedBackground:
    """Mixed in before ModalScreen: ``class HelpScreen(DimmedBackground, ModalScreen[None])``."""

    _blended: dict[Any, RichStyle] | None = None

    def render(self) -> RenderableType | Visual:
        background = super().render()  # type: ignore[misc]
        if isinstance(background, BackgroundScreen):
            if self._blended is None:
                self._blended = {}
            return DimmedScreen(background.screen, background.color, self._blended)
        return background
