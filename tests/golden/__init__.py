"""Golden cases of article extraction, in the web-poet layout: one folder per case under
``tests/golden/cases/<name>/``, holding

- ``body.html``: the response's body, byte for byte as the site would send it;
- ``info.json``: the response's ``url``, ``status`` and ``headers``;
- ``output.json``: the item extraction gives for it, checked by hand. The body is kept
  as a list of its lines, so that a change shows in a diff as the lines it changed; the
  fields the pipelines add (content hash, rights holder, fetch time) and the extractor's
  version are left out.

``tests/test_golden.py`` runs every case folder. After a deliberate change to
extraction, write the new outputs and review them in the diff before committing::

    python -m tests.golden regenerate CASE [CASE …]
    python -m tests.golden regenerate --all

A new case is a content block put into the snapshot's own article template (the
desktop page of seeds/mirror, or its mobile page)::

    python -m tests.golden new CASE --content fragment.html [--title T] [--mobile] [--gb2312]

then ``regenerate CASE``, and read its output.json line by line before committing it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from crawler.items import ArticleItem
from crawler.pages.article import assemble_article, parse_page
from tests.support.crawl import MIRROR

CASES = Path(__file__).parent / "cases"

# The fields of output.json: the item as extraction gives it, without what the
# pipelines add later or what only says which run produced it.
OUTPUT_FIELDS = ("url", "aid", "title", "category", "published_at", "source", "author",
                 "tags", "body", "copyright_notice", "site_name", "site_copyright", "icp",
                 "page_urls", "template", "problems", "removed")  # fmt: skip

# The snapshot's pages that new cases are made from: their content block is replaced.
DESKTOP_TEMPLATE = "http://www.ylwt22.com/dangtuangongzuo/2023/1009/316197.html"
GBK_TEMPLATE = "http://www.ylwt22.com/gongzuozongjie/2024/0105/319543.html"
MOBILE_TEMPLATE = "http://m.ylwt22.com/dangtuangongzuo/2023/1224/320094.html"
_CONTENT = {
    "desktop": re.compile(
        r'(<div class="content" id="article-content">\n)(.*?)(\n</div>\n\n<div class="tags">)',
        re.DOTALL,
    ),
    "mobile": re.compile(
        r'(<div class="m-content">\n)(.*?)(\n</div>\n<div class="m-copyright">)', re.DOTALL
    ),
}
_TITLE = re.compile(r"<h1[^>]*>(.*?)</h1>")


def case_names() -> list[str]:
    return sorted(path.name for path in CASES.iterdir() if (path / "info.json").is_file())


def response(name: str) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) of a case's saved response."""
    folder = CASES / name
    info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
    return info["url"], (folder / "body.html").read_bytes(), dict(info["headers"])


def item(name: str) -> ArticleItem:
    """The item extraction gives for a case's page."""
    url, body, headers = response(name)
    return assemble_article([parse_page(url, body, headers)])


def extract(name: str) -> dict[str, Any]:
    """What extraction gives for a case, in output.json's form."""
    item_values = asdict(item(name))
    output = {key: item_values[key] for key in OUTPUT_FIELDS}
    output["body"] = output["body"].split("\n") if output["body"] else []
    if output["published_at"] is not None:
        output["published_at"] = output["published_at"].isoformat()
    return output


def expected(name: str) -> dict[str, Any]:
    return json.loads((CASES / name / "output.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def regenerate(name: str) -> Path:
    path = CASES / name / "output.json"
    text = json.dumps(extract(name), ensure_ascii=False, indent=2, sort_keys=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def new_case(
    name: str,
    content: str,
    *,
    title: str | None = None,
    mobile: bool = False,
    gb2312: bool = False,
    aid: int | None = None,
) -> Path:
    """A case folder whose page is the snapshot's article page with ``content`` as its
    content block, and, given ``title``, that title wherever the page names its own.
    ``gb2312`` saves a GB2312 page, as the site's older pages are: declared gb2312 in a
    <meta>, no charset in the header, and every character GB2312 lacks written as a
    numeric character reference."""
    template = MOBILE_TEMPLATE if mobile else GBK_TEMPLATE if gb2312 else DESKTOP_TEMPLATE
    raw = (MIRROR / template.split("://", 1)[1]).read_bytes()
    html = raw.decode("gb18030" if template == GBK_TEMPLATE else "utf-8")
    old_aid = template.rsplit("/", 1)[1].removesuffix(".html")
    url = template
    if aid is not None:
        html = html.replace(f"/{old_aid}.html", f"/{aid}.html")
        url = template.replace(f"/{old_aid}.html", f"/{aid}.html")
    if title is not None:
        found = _TITLE.search(html)
        assert found is not None
        html = html.replace(found[1], title)
    pattern = _CONTENT["mobile" if mobile else "desktop"]
    html, count = pattern.subn(lambda m: m[1] + content.strip("\n") + m[3], html, count=1)
    assert count == 1, "the template's content block was not found"
    folder = CASES / name
    folder.mkdir(parents=True, exist_ok=True)
    # A GB2312 page writes what GB2312 lacks as references.
    body = html.encode("gb2312", errors="xmlcharrefreplace") if gb2312 else html.encode()
    (folder / "body.html").write_bytes(body)
    info = {"url": url, "status": 200, "headers": {"Content-Type": "text/html"}}
    (folder / "info.json").write_text(
        json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return folder
