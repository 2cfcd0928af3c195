"""HTML pages from the package's templates: shipped with the package, escaped, strict about names."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import jinja2
import pytest
from plotly.offline import get_plotlyjs

import microseg
from microseg.outputs.pages import render_page

TEMPLATES = Path(microseg.__file__).parent / "templates"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
EVIL = "<script>alert('x')</script> & \"co\""
ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &quot;co&quot;"


def test_every_template_is_package_data():
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["microseg"]
    found = sorted(TEMPLATES.rglob("*"))

    assert {"page.html", "report.html", "validation.html"} <= {path.name for path in found}
    # setuptools' globs do not descend into folders: a template in a subfolder would not be installed
    assert [path for path in found if not path.is_file()] == []
    assert [
        p.name for p in found if not any(fnmatch.fnmatch(f"templates/{p.name}", g) for g in patterns)
    ] == []


def _validation_page(**changes) -> str:
    context = {
        "title": EVIL,
        "summary": [EVIL],
        "charts": [],
        "tables": [(EVIL, [EVIL, "count"], [[EVIL, "1,024"]], [1])],
    }
    return render_page("validation.html", **(context | changes))


def test_every_printed_value_is_escaped():
    page = _validation_page()
    ours = page.replace(get_plotlyjs(), "")

    assert EVIL not in ours and "<script>alert" not in ours
    assert f"<title>{ESCAPED}</title>" in ours and f"<h1>{ESCAPED}</h1>" in ours
    assert f'<p class="summary">{ESCAPED}</p>' in ours and f"<h2>{ESCAPED}</h2>" in ours
    assert f"<th>{ESCAPED}</th>" in ours and f"<td>{ESCAPED}</td>" in ours


def test_numeric_columns_are_marked_and_plotly_is_inlined_once():
    page = _validation_page()

    assert '<th class="num">count</th>' in page and '<td class="num">1,024</td>' in page
    assert page.count(get_plotlyjs()) == 1 and page.index(get_plotlyjs()) < page.index("</head>")
    assert "default-src 'none'" in page


def test_a_missing_value_is_an_error_not_a_blank():
    with pytest.raises(jinja2.UndefinedError, match="summary"):
        render_page("validation.html", title="t", charts=[], tables=[])
