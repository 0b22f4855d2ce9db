"""A small site in the archived site's format, written as a `wget --mirror` tree that
SiteProxy serves, for tests whose site changes between runs: new articles at the top of
a category (pushing the others down its pages), articles edited, articles deleted.

The pages follow the site's templates (the classes crawler/pages/selectors.py reads);
the articles' paragraphs are the snapshot's own, a few per article, so that no two
articles are the same document.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from storage.models import BEIJING
from tests.support.pages import expected_records

HOST = "www.ylwt22.com"
ROOT = f"http://{HOST}/"
FOOTER = (
    '<div class="footer"><p><a href="/">十号范文网</a> | <a href="/about/">关于我们</a></p>'
    "<p>Copyright &copy; 2018-2024 十号范文网 Inc. All Rights Reserved.十号范文网 版权所有</p>"
    '<p>备案号:<a href="https://beian.miit.gov.cn/">粤ICP备18086540号</a></p></div>'
)


def _paragraphs() -> list[str]:
    """Every distinct body paragraph of the snapshot, long ones only."""
    seen: dict[str, None] = {}
    for record in expected_records():
        if record["dup_group"] and record["url"].endswith("314577.html"):
            continue  # the snapshot's reprint repeats its original's paragraphs
        for line in record["body"].split("\n")[1:]:
            if len(line) >= 40:
                seen.setdefault(line, None)
    return list(seen)


PARAGRAPHS = _paragraphs()


@dataclass
class Article:
    aid: int
    category: str
    title: str
    published_at: datetime
    paragraphs: list[str]

    @property
    def path(self) -> str:
        return f"{self.category}/{self.published_at:%Y/%m%d}/{self.aid}.html"

    @property
    def url(self) -> str:
        return ROOT + self.path

    @property
    def body(self) -> str:
        """What extraction gives for it: the title line, then the paragraphs."""
        return "\n".join([self.title, *self.paragraphs])


@dataclass
class Category:
    folder: str
    name: str
    typeid: int
    articles: list[Article] = field(default_factory=list)
    """Newest first, as the list pages show them."""


class Site:
    def __init__(self, per_page: int = 4) -> None:
        self.per_page = per_page
        self.categories: list[Category] = []
        self._next_aid = 400001
        self._next_paragraph = 0
        self._clock = datetime(2023, 1, 1, 9, 0, tzinfo=BEIJING)

    def category(self, folder: str, name: str) -> Category:
        category = Category(folder, name, typeid=len(self.categories) + 1)
        self.categories.append(category)
        return category

    def add(self, category: Category, count: int = 1, paragraphs: int = 3) -> list[Article]:
        """New articles, published now, at the top of the category's list."""
        added = []
        for _ in range(count):
            self._clock += timedelta(hours=7)
            texts = [PARAGRAPHS[(self._next_paragraph + i) % len(PARAGRAPHS)]
                     for i in range(paragraphs)]  # fmt: skip
            self._next_paragraph += paragraphs
            title = f"{self._clock:%Y年}第{self._next_aid}号{category.name}"
            article = Article(self._next_aid, category.folder, title, self._clock, texts)
            self._next_aid += 1
            category.articles.insert(0, article)
            added.append(article)
        return added

    def find(self, aid: int) -> Article:
        return next(a for c in self.categories for a in c.articles if a.aid == aid)

    def delete(self, article: Article) -> None:
        for category in self.categories:
            if article in category.articles:
                category.articles.remove(article)

    @property
    def articles(self) -> list[Article]:
        return [a for c in self.categories for a in c.articles]

    def list_url(self, category: Category, page: int) -> str:
        return ROOT + (f"{category.folder}/" if page == 1 else
                       f"{category.folder}/list_{category.typeid}_{page}.html")  # fmt: skip

    def pages(self, category: Category) -> int:
        return max(1, -(-len(category.articles) // self.per_page))

    def write(self, mirror: Path) -> None:
        """The whole site as it is now; what was deleted is gone from the tree."""
        shutil.rmtree(mirror, ignore_errors=True)
        www = mirror / HOST
        www.mkdir(parents=True)
        nav = "".join(f'<li><a href="/{c.folder}/">{c.name}</a></li>' for c in self.categories)
        (www / "index.html").write_text(
            f'<html><head><meta charset="utf-8"><title>十号范文网</title></head><body>'
            f'<div class="nav"><ul><li><a href="/">首页</a></li>{nav}</ul></div>{FOOTER}'
            "</body></html>",
            encoding="utf-8",
        )
        (www / "robots.txt").write_text("User-agent: *\nDisallow: /plus/\n", encoding="utf-8")
        for category in self.categories:
            for page in range(1, self.pages(category) + 1):
                self._write_list_page(www, category, page)
            for article in category.articles:
                target = www / article.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(self._article_page(article), encoding="utf-8")

    def _write_list_page(self, www: Path, category: Category, page: int) -> None:
        start = (page - 1) * self.per_page
        items = "".join(
            f'<li><span class="date">{a.published_at:%Y-%m-%d}</span>'
            f'<a href="/{a.path}">{html.escape(a.title)}</a><p class="intro">…</p></li>'
            for a in category.articles[start : start + self.per_page]
        )
        pages = self.pages(category)
        # The stock DedeCMS pager shows a window of page numbers around this one.
        window = range(max(1, page - 1), min(pages, page + 1) + 1)
        links = "".join(
            f"<li><a href='list_{category.typeid}_{n}.html'>{n}</a></li>" for n in window
        )
        pager = (
            f"<li><a href='list_{category.typeid}_1.html'>首页</a></li>{links}"
            f"<li><a href='list_{category.typeid}_{pages}.html'>末页</a></li>"
            f'<li><span class="pageinfo">共 <strong>{pages}</strong>页'
            f"<strong>{len(category.articles)}</strong>条</span></li>"
        )
        name = "index.html" if page == 1 else f"list_{category.typeid}_{page}.html"
        (www / category.folder).mkdir(parents=True, exist_ok=True)
        (www / category.folder / name).write_text(
            f'<html><head><meta charset="utf-8"></head><body>'
            f'<div class="list"><ul>{items}</ul></div>'
            f'<div class="pages"><ul class="pagelist">{pager}</ul></div>{FOOTER}</body></html>',
            encoding="utf-8",
        )

    def _article_page(self, article: Article) -> str:
        category = next(c for c in self.categories if c.folder == article.category)
        title = html.escape(article.title)
        paragraphs = "".join(f"<p>&nbsp;&nbsp;{html.escape(p)}</p>" for p in article.paragraphs)
        return (
            f'<html><head><meta charset="utf-8"><title>{title}_十号范文网</title></head><body>'
            f'<div class="place">当前位置: <a href="/">首页</a> > '
            f'<a href="/{category.folder}/">{category.name}</a> > </div>'
            f'<div class="article"><h1 class="title">{title}</h1>'
            f'<div class="info">发布时间:{article.published_at:%Y-%m-%d %H:%M:%S}'
            " | 来源:网友投稿</div>"
            f'<div class="content"><p>下面是小编为大家整理的{title},供大家参考。</p>'
            f'<p style="text-align: center;"><strong>{title}</strong></p>{paragraphs}</div>'
            f'<div class="tags">推荐访问:<a href="/tags/1.html">{category.name}</a></div>'
            f'<div class="copyright"><p>本文标题:{title}</p>'
            f'<p>链接地址:<a href="{article.url}">{article.url}</a></p>'
            '<p class="statement">版权声明:<br />'
            "1.十号范文网的资料来自互联网以及用户的投稿。<br />"
            f"2.《{title}》一文的著作权归原作者所有,仅供学习参考。<br />"
            f"3.如果本网所转载内容不慎侵犯了您的权益,请联系我们。</p></div></div>{FOOTER}"
            "</body></html>"
        )
