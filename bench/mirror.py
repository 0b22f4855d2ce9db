"""The synthetic site of bench/corpus.py written out as pages, in `wget --mirror` layout.

    python bench/mirror.py DIR [COUNT]     # DIR/www.ylwt22.com/..., COUNT articles (5,000)

The pages copy the live site's DedeCMS templates as saved in seeds/mirror/: the header,
the navigation, the right-hand column and the footer are all there, so a page weighs what
a real one does and every extractor has the same furniture to cut away. The home page
carries the navigation; each category has its list pages (index.html, then
list_<typeid>_<n>.html, PER_PAGE articles each, newest first, with the stock pager and
its 共 N 页); one article in MULTI_PAGE_EVERY is split over two pages (<aid>_2.html), as
the site splits long ones. robots.txt is the site's, without a sitemap, so that a crawl
finds the articles only through the lists.
"""

from __future__ import annotations

import html
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.corpus import SyntheticArticle, generate  # noqa: E402
from tests.support.dedup_set import CATEGORY_DIRS  # noqa: E402

HOST = "www.ylwt22.com"
PER_PAGE = 20
MULTI_PAGE_EVERY = 10
# The site's own category ids (list_<typeid>_<n>.html), as in seeds/mirror.
TYPEIDS = {
    "dangtuangongzuo": 5,
    "gongzuozongjie": 2,
    "gongzuojihua": 3,
    "shuzhibaogao": 9,
    "xindetihui": 7,
    "yanjianggao": 11,
}
ROBOTS = (
    "User-agent: *\nDisallow: /plus/\nDisallow: /include/\nDisallow: /templets/\n"
    "Disallow: /data/\nDisallow: /dede/\nDisallow: /member/\n"
)

_HEAD = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" \
"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />
<title>{title}_十号范文网</title>
<meta name="keywords" content="{keywords}" />
<meta name="description" content="{description}" />
<link href="/skin/css/style.css" rel="stylesheet" type="text/css" />
<script type="text/javascript" src="/skin/js/jquery.min.js"></script>
<script type="text/javascript" src="/skin/js/ad.js"></script>
</head>
<body>
<div class="top"><div class="w1000"><span class="fl">欢迎来到十号范文网！</span><span class="fr">\
<a href="/sitemap.html">网站地图</a> | <a href="javascript:void(0)" onclick="AddFavorite()">\
加入收藏</a></span></div></div>
<div class="header w1000">
  <a href="/" class="logo"><img src="/skin/images/logo.png" alt="十号范文网" /></a>
  <form action="/plus/search.php" method="get" name="formsearch" class="search">\
<input type="hidden" name="kwtype" value="0" /><input name="q" type="text" \
class="search-keyword" value="" /><button type="submit">搜索</button></form>
</div>
<div class="nav"><ul class="w1000"><li><a href="/">首页</a></li>{nav}</ul></div>
<div class="w1000 main">
<div class="left">
"""
_TAIL = """</div>
<div class="right">
<div class="box hot"><h3>热门文章</h3><ul>{hot}</ul></div>
<div class="box ad"><script type="text/javascript">ad_show('right_300');</script></div>
</div>
</div>
<div class="footer">
<p><a href="/">十号范文网</a> | <a href="/about/">关于我们</a> | <a href="/sitemap.html">网站地图\
</a> | <a href="/plus/guestbook.php">联系我们</a></p>
<p>Copyright &copy; 2018-2024 十号范文网 Inc. All Rights Reserved.十号范文网 版权所有</p>
<p>本站部分资源和信息来源于互联网,如有侵犯您的权益,请尽快联系我们进行处理,谢谢!备案号:\
<a href="https://beian.miit.gov.cn/" rel="nofollow" target="_blank">粤ICP备18086540号</a></p>
</div>
<script type="text/javascript">var _hmt = _hmt || [];(function(){{var hm = \
document.createElement("script");hm.src = "//hm.baidu.com/hm.js?5a8f0c2e";var s = \
document.getElementsByTagName("script")[0];s.parentNode.insertBefore(hm, s);}})();</script>
</body>
</html>
"""
_NOTICE = (
    '<p class="statement">版权声明:<br />\n'
    "1.十号范文网的资料来自互联网以及用户的投稿,用于非商业性学习目的免费阅览。<br />\n"
    "2.《{title}》一文的著作权归原作者所有,仅供学习参考,转载或引用时请保留版权信息。<br />\n"
    "3.如果本网所转载内容不慎侵犯了您的权益,请联系我们,我们将会及时删除。</p>"
)


@dataclass(frozen=True)
class WrittenSite:
    articles: int
    article_pages: int  # multi-page articles count each of their pages
    list_pages: int
    bytes: int

    @property
    def pages(self) -> int:
        """Every page a crawl fetches: home, lists and articles (robots.txt aside)."""
        return 1 + self.list_pages + self.article_pages


def _path(article: SyntheticArticle) -> str:
    return article.url.split(HOST, 1)[1]  # /<folder>/<yyyy>/<mmdd>/<aid>.html


def _nav(current: str | None = None) -> str:
    hover = ' class="hover"'
    return "".join(
        f'<li{hover if folder == current else ""}><a href="/{folder}/">{name}</a></li>'
        for name, folder in CATEGORY_DIRS.items()
    )


def _hot(articles: Sequence[SyntheticArticle]) -> str:
    return "".join(
        f'<li><a href="{_path(a)}" title="{html.escape(a.title)}">{html.escape(a.title)}</a></li>'
        for a in articles
    )


def _page(body: str, *, title: str, keywords: str, description: str, nav: str, hot: str) -> str:
    head = _HEAD.format(
        title=html.escape(title),
        keywords=html.escape(keywords),
        description=html.escape(description),
        nav=nav,
    )
    return head + body + _TAIL.format(hot=hot)


def article_pages(
    article: SyntheticArticle, *, pages: int, hot: str, previous: SyntheticArticle | None
) -> list[str]:
    """The HTML of each page of the article, the first page first."""
    folder = CATEGORY_DIRS[article.category]
    title = html.escape(article.title)
    lines = article.body.split("\n")[1:]  # the first line is the title, which the page adds
    cut = [round(len(lines) * k / pages) for k in range(pages + 1)]
    stem = _path(article).rsplit("/", 1)[1].removesuffix(".html")
    names = [f"{stem}.html", *(f"{stem}_{n}.html" for n in range(2, pages + 1))]
    info = [f"发布时间:{article.published_at:%Y-%m-%d %H:%M:%S}"]
    if article.author:
        info.append(f"作者:{article.author}")
    if article.source:
        info.append(f"来源:{article.source}")
    tags = " ".join(
        f'<a href="/tags/{n}.html" target="_blank">{html.escape(t)}</a>'
        for n, t in enumerate(article.tags, 1)
    )
    prev = (
        f'<a href="{_path(previous)}">{html.escape(previous.title)}</a>' if previous else "没有了"
    )
    out = []
    for number in range(1, pages + 1):
        paragraphs = lines[cut[number - 1] : cut[number]]
        content = [f"<p>&nbsp;&nbsp;{html.escape(p)}</p>" for p in paragraphs]
        if number == 1:
            content[:0] = [
                f"<p>下面是小编为大家整理的{title},供大家参考。</p>",
                f'<p style="text-align: center;"><strong>{title}</strong></p>',
            ]
            # The site puts an ad after the second paragraph of the first page.
            ad = '<div class="ad_content"><script type="text/javascript">ad_show(\'art_mid\');'
            content.insert(min(4, len(content)), ad + "</script></div>")
        pager = ""
        if pages > 1:
            items = "".join(
                f"<li class=\"thisclass\"><a href='#'>{n}</a></li>"
                if n == number
                else f"<li><a href='{names[n - 1]}'>{n}</a></li>"
                for n in range(1, pages + 1)
            )
            before = f"'{names[number - 2]}'" if number > 1 else "'#'"
            after = f"'{names[number]}'" if number < pages else "'#'"
            pager = (
                f'<div class="dede_pages"><ul class="pagelist"><li><a>共{pages}页: </a></li>'
                f"<li><a href={before}>上一页</a></li>{items}"
                f"<li><a href={after}>下一页</a></li></ul></div>\n"
            )
        body = (
            f"<div class=\"place\">当前位置: <a href='/'>首页</a> > "
            f"<a href='/{folder}/'>{article.category}</a> > </div>\n"
            f'<div class="article">\n<h1 class="title">{title}</h1>\n'
            f'<div class="info">{" | ".join(info)}</div>\n'
            '<div class="ad_top"><script type="text/javascript">ad_show(\'art_top\');'
            "</script></div>\n"
            f'<div class="content" id="article-content">\n{chr(10).join(content)}\n\n</div>\n'
            f"{pager}"
            f'<div class="tags">推荐访问:{tags}</div>\n'
            f'<div class="copyright">\n<p>本文标题:{title}</p>\n'
            f'<p>链接地址:<a href="{article.url}">{article.url}</a></p>\n'
            f"{_NOTICE.format(title=title)}\n</div>\n"
            f'<ul class="prenext"><li>上一篇:{prev}</li><li>下一篇:没有了</li></ul>\n'
            "</div>\n"
        )
        suffix = "" if number == 1 else f"(第{number}页)"
        out.append(
            _page(
                body,
                title=article.title + suffix,
                keywords=",".join(article.tags),
                description=lines[0][:120] if lines else article.title,
                nav=_nav(folder),
                hot=hot,
            )
        )
    return out


def list_page(
    name: str,
    folder: str,
    articles: Sequence[SyntheticArticle],
    page: int,
    pages: int,
    *,
    total: int,
    hot: str,
) -> str:
    typeid = TYPEIDS[folder]
    items = "".join(
        f'<li><span class="date">{a.published_at:%Y-%m-%d}</span><a href="{_path(a)}" '
        f'title="{html.escape(a.title)}" target="_blank">{html.escape(a.title)}</a>'
        f'<p class="intro">{html.escape(a.body.split(chr(10))[1][:60])}...</p></li>\n'
        for a in articles
    )
    window = range(max(1, page - 2), min(pages, page + 2) + 1)
    numbers = "".join(
        f'<li class="thisclass"><a>{n}</a></li>' if n == page
        else f"<li><a href='list_{typeid}_{n}.html'>{n}</a></li>"
        for n in window
    )  # fmt: skip
    pager = (
        f"<li><a href='list_{typeid}_1.html'>首页</a></li>{numbers}"
        f"<li><a href='list_{typeid}_{pages}.html'>末页</a></li>"
        f'<li><span class="pageinfo">共 <strong>{pages}</strong>页'
        f"<strong>{total}</strong>条</span></li>"
    )
    body = (
        f"<div class=\"place\">当前位置: <a href='/'>首页</a> > "
        f"<a href='/{folder}/'>{name}</a> > </div>\n"
        f'<div class="list"><ul>\n{items}</ul></div>\n'
        f'<div class="pages"><ul class="pagelist">{pager}</ul></div>\n'
    )
    title = name if page == 1 else f"{name}_第{page}页"
    return _page(
        body,
        title=title,
        keywords=name,
        description=f"十号范文网{name}频道,提供最新{name}范文。",
        nav=_nav(folder),
        hot=hot,
    )


def write_site(mirror: Path, articles: Iterable[SyntheticArticle]) -> WrittenSite:
    """Write the site of ``articles`` (in publication order) under ``mirror``/HOST."""
    www = mirror / HOST
    www.mkdir(parents=True, exist_ok=True)
    by_folder: dict[str, list[SyntheticArticle]] = {f: [] for f in CATEGORY_DIRS.values()}
    article_count = page_count = total = 0
    previous: dict[str, SyntheticArticle] = {}
    hot_list: list[SyntheticArticle] = []
    for index, article in enumerate(articles):
        if len(hot_list) < 8:
            hot_list.append(article)
        hot = _hot(hot_list)
        folder = CATEGORY_DIRS[article.category]
        pages = 2 if index % MULTI_PAGE_EVERY == MULTI_PAGE_EVERY - 1 else 1
        texts = article_pages(article, pages=pages, hot=hot, previous=previous.get(folder))
        target = www / _path(article).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        for number, text in enumerate(texts, 1):
            file = target if number == 1 else target.with_name(f"{target.stem}_{number}.html")
            data = text.encode()
            file.write_bytes(data)
            total += len(data)
        by_folder[folder].append(article)
        previous[folder] = article
        article_count += 1
        page_count += pages
    hot = _hot(hot_list)
    list_count = 0
    for category, folder in CATEGORY_DIRS.items():
        newest_first = by_folder[folder][::-1]
        pages = max(1, -(-len(newest_first) // PER_PAGE))
        for page in range(1, pages + 1):
            chunk = newest_first[(page - 1) * PER_PAGE : page * PER_PAGE]
            data = list_page(
                category, folder, chunk, page, pages, total=len(newest_first), hot=hot
            ).encode()
            # The first page is the category's folder, and list_<typeid>_1.html too.
            targets = [f"list_{TYPEIDS[folder]}_{page}.html"]
            if page == 1:
                targets.append("index.html")
            for list_name in targets:
                (www / folder / list_name).write_bytes(data)
            total += len(data)
            list_count += 1
    home = _page(
        '<div class="list"><ul></ul></div>\n',
        title="十号范文网",
        keywords="范文,工作总结,心得体会",
        description="十号范文网",
        nav=_nav(),
        hot=hot,
    )
    (www / "index.html").write_text(home, encoding="utf-8")
    (www / "robots.txt").write_text(ROBOTS, encoding="utf-8")
    return WrittenSite(article_count, page_count, list_count, total)


def main() -> None:
    mirror = Path(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    written = write_site(mirror, generate(count))
    print(
        f"{written.articles:,} articles on {written.article_pages:,} pages, "
        f"{written.list_pages:,} list pages, {written.bytes / 1e6:.0f} MB in {mirror / HOST}"
    )


if __name__ == "__main__":
    main()
