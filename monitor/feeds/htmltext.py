"""HTML as feeds carry it (an entry's summary or content) -> its text. Pure.

In: a fragment of HTML (escaped in an RSS description, inline in Atom, a JSON Feed's
content_html). Out: its text, entities decoded, with a space where a block element (p, div, br,
li, td ...) or a comment stood; script, style, template and noscript dropped. Whitespace is left
as it is for the caller to collapse.

libxml2's HTML parser reads the markup as a browser would (unclosed and stray tags, unquoted
attributes, entities without their semicolon) in time linear in its size, and one XSLT pass, in C
too, writes the text.
"""

from __future__ import annotations

import html

from lxml import etree
from lxml.html import HTMLParser

BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "img", "li", "main",
    "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
})
_DROPPED_TAGS = ("script", "style", "template", "noscript")

# The markup is given as UTF-8 bytes: lxml refuses a str holding control characters, which
# feeds do send. huge_tree: no cap on the size of a text or the depth of nesting.
_PARSER = HTMLParser(encoding="utf-8", huge_tree=True)
_TO_TEXT = etree.XSLT(etree.XML(f"""\
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="utf-8"/>
  <xsl:template match="{'|'.join(sorted(BLOCK_TAGS))}">
    <xsl:text> </xsl:text><xsl:apply-templates/><xsl:text> </xsl:text>
  </xsl:template>
  <xsl:template match="{'|'.join(_DROPPED_TAGS)}"/>
  <xsl:template match="comment()"><xsl:text> </xsl:text></xsl:template>
</xsl:stylesheet>"""))


def html_text(markup: str) -> str:
    """The text of `markup` (see the module docstring)."""
    if "<" not in markup:  # entities at most (a quarter of real summaries): no parse needed
        return html.unescape(markup)
    root = etree.fromstring(markup.encode("utf-8", "replace"), _PARSER)
    if root is None:  # nothing but a comment, a doctype or whitespace
        return ""
    return str(_TO_TEXT(root))
