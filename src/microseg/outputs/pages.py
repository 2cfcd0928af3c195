"""HTML pages rendered from the templates shipped in the package (``microseg/templates``).

Jinja2 renders them with autoescaping on for every template: a value a template prints is
HTML-escaped unless the page code marks it as markup of ours (:class:`markupsafe.Markup`),
which it does only for Plotly's figure markup and its JavaScript bundle. Escaping goes through
the standard library's :func:`html.escape`, so quotes keep the entity forms the pages have
always used (``&#x27;``, ``&quot;``). An undefined name in a template is an error, never an
empty string.

Every page is self-contained: ``page.html`` holds the Content-Security-Policy that forbids the
browser to fetch anything and inlines Plotly's JavaScript once, from the installed package.

>>> from markupsafe import Markup
>>> _environment().from_string("<p>{{ text }}</p>{{ ours }}").render(
...     text="<b>O'Neil</b> & co", ours=Markup("<hr>"))
'<p>&lt;b&gt;O&#x27;Neil&lt;/b&gt; &amp; co</p><hr>'
"""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

__all__ = ["render_page"]


def render_page(template: str, **context: Any) -> str:
    """Render the page ``template`` (a file of ``microseg/templates``) with Plotly inlined.

    >>> from markupsafe import Markup
    >>> page = render_page("validation.html", title="<check>", summary=["2 < 3"], charts=[], tables=[])
    >>> "<h1>&lt;check&gt;</h1>" in page and '<p class="summary">2 &lt; 3</p>' in page
    True
    """
    from plotly.offline import get_plotlyjs

    return _environment().get_template(template).render(plotly_js=Markup(get_plotlyjs()), **context)


def _escaped(value: Any) -> Any:
    """Escape a printed value the standard library's way (Jinja's own escaping then leaves it)."""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value), quote=True))


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("microseg", "templates"),
        autoescape=True,
        finalize=_escaped,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
