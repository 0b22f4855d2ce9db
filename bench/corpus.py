"""A large synthetic archive of 十号范文网, in the site's own format, for benchmarks.

    from bench.corpus import generate, as_record
    for article in generate(5000):
        ...

    python bench/corpus.py [COUNT]      # prints the first articles and a summary

Every article is made of the snapshot's real text (seeds/expected.json): its sentences
are drawn across the real articles of its category, and part of their words are
exchanged for other words of the snapshot, so that two articles share little more than a
stock phrase. That is what the real site looks like: its distinct articles have a
Jaccard similarity of at most 0.007 (5-character shingles). Here two articles average
0.005 and two of one category 0.02, so a near-duplicate index does not fill up as the
archive grows: an article's LSH candidates are almost only its own reprints and original
(bench/dedup_cost.py counts 0.07 per article at 10,000 articles, 0.08 at 100,000). Each
article still has the site's form: a title line, an opening that names its subject,
numbered headings with (一)(二) points or a speech's salutation, 800-3000 characters in
all, and the year it was written in. The words read as the site's, not always as sense.

About REPRINT_SHARE of the articles are reprints of one published in the year before,
changed in the ways tests/support/dedup_set.py describes: years moved on, a sentence
edited, a paragraph added or dropped, another editor's line, another title, an exact
copy, or two or three of these at once.

Seeded and sequential: generate(n) is always the first n articles of the same stream,
so a benchmark of 5,000 articles and one of 100,000 begin with the same ones.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

# Run as a script from anywhere: the project root holds the tests package.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from crawler.pages.article import EXTRACTOR_VERSION  # noqa: E402
from pipelines.provenance import content_hash  # noqa: E402
from storage.models import BEIJING  # noqa: E402
from storage.repository import ArticleRecord  # noqa: E402
from tests.support.dedup_set import (  # noqa: E402
    _EDITOR_LINES,
    CATEGORY_DIRS,
    REPRINT_KINDS,
    SITE,
    _edit_sentence_text,
    _title_variants,
)
from tests.support.pages import expected_records  # noqa: E402

SEED = 2226
REPRINT_SHARE = 0.07
# The share of replaceable words exchanged in every sentence an article borrows: enough
# that two articles sharing a sentence keep few of its 5-character shingles in common.
SUBSTITUTION_RATE = 0.45
MIN_LENGTH, MAX_LENGTH = 800, 3000
# The site publishes about this many articles a day, with ids in publication order.
ARTICLES_PER_DAY = 38
FIRST_DAY = date(2017, 1, 2)
FIRST_AID = 200001
# A reprint changes at most this share of its original, as the labelled set requires;
# originals keep that much clear of the length bounds, so that reprints stay inside.
MAX_CHANGED_SHARE = 0.12
_SHORTEST = int(MIN_LENGTH / (1 - MAX_CHANGED_SHARE)) + 10
_LONGEST = int(MAX_LENGTH * (1 - MAX_CHANGED_SHARE)) - 80  # room for an editor's line

SITE_NAME = "十号范文网"
SITE_COPYRIGHT = "Copyright © 2018-2024 十号范文网 Inc. All Rights Reserved.十号范文网 版权所有"
ICP = "粤ICP备18086540号"
NOTICE = (
    "1.十号范文网的资料来自互联网以及用户的投稿,用于非商业性学习目的免费阅览。\n"
    "2.《{title}》一文的著作权归原作者所有,仅供学习参考,转载或引用时请保留版权信息。\n"
    "3.如果本网所转载内容不慎侵犯了您的权益,请联系我们,我们将会及时删除。"
)
WARC_HOST = "www.ylwt22.com"
SOURCES = ("网友投稿", "本站整理", "原创", "")
AUTHORS = ("", "", "", "黄子涵", "周建军", "李静", "郑丽华", "陈晓琳", "刘思远")

_NUMERALS = "一二三四五六七八九十"
_HEADING = re.compile(r"^[一二三四五六七八九十]+、")
_LABEL = re.compile(r"^[（(][一二三四五六七八九十]+[）)]")
_SENTENCE = re.compile(r"[^。！？；]+[。！？；]?")
_CJK = re.compile(r"[\u4e00-\u9fff]+")
_NUMBER = re.compile(r"\d+")
_YEAR = re.compile(r"(?<!\d)20[1-3]\d(?!\d)")

# Subjects: a place, then what the article is about, by category.
_PLACE_CHARS = "东南西北青红金银安平和兴华新长永宁丰泰明清河山湖海阳江云龙凤桥林松竹梅兰石"
_PLACE_KINDS = ("县", "区", "镇", "乡", "街道", "社区", "村", "市")
_UNITS = (
    "财政局", "教育局", "供电公司", "第二中学", "人民医院", "实验小学", "卫生院", "图书馆",
    "自然资源局", "市场监督管理局", "农商银行", "化工有限公司", "融媒体中心", "交通运输局",
    "退役军人服务站", "文化馆", "税务局", "疾控中心", "职业技术学院", "消防救援大队",
)  # fmt: skip
_TOPICS = ("", "", "安全生产", "党风廉政建设", "意识形态", "招商引资", "教学", "财务",
           "综治维稳", "信访", "基本公共卫生服务", "乡村振兴", "宣传思想", "人才")  # fmt: skip
_PARTY_UNITS = ("党支部", "团委", "机关党委", "党总支", "团支部", "党委")
_PARTY_KINDS = ("工作总结", "工作情况汇报", "工作计划", "意识形态工作情况汇报",
                "上半年工作总结", "第三季度工作总结", "“青年大学习”行动开展情况报告")  # fmt: skip
_POSITIONS = ("站长", "主任", "经理", "书记", "副局长", "校长", "财务总监", "科长", "所长")
_EVENTS = ("主题教育学习", "新员工入职培训", "安全生产培训", "师德师风学习", "支教",
           "中青年干部培训班学习", "廉政教育基地参观", "党史学习教育", "读书分享活动")  # fmt: skip
_THEMES = ("“五四”青年节", "国庆节", "教师节", "安全生产月", "爱岗敬业", "廉洁文化",
           "读书节", "劳动节", "诚信建设", "科技创新", "学生会主席竞选")  # fmt: skip
_SALUTATIONS = ("尊敬的各位领导、同志们：", "各位领导、同事们：",
                "尊敬的各位领导、亲爱的青年朋友们：", "尊敬的各位老师、亲爱的同学们：")  # fmt: skip
_SPEECH_ENDS = ("我的演讲完毕，谢谢大家！", "谢谢大家！")
_DUTY_ENDS = ("以上是我的述职报告，不妥之处，恳请各位领导和同志们批评指正。谢谢大家！",
              "以上述职，请各位领导和同志们评议。")  # fmt: skip


@dataclass(frozen=True, slots=True)
class SyntheticArticle:
    """One article of the synthetic site; ``original`` is the aid of the article it
    reprints (None for an original) and ``reprint_kind`` how it was changed."""

    aid: int
    url: str
    title: str
    category: str
    published_at: datetime  # Beijing time
    source: str
    author: str
    tags: tuple[str, ...]
    body: str  # the title line, then one line per paragraph
    original: int | None = None
    reprint_kind: str | None = None


def generate(count: int, seed: int = SEED) -> Iterator[SyntheticArticle]:
    """The first ``count`` articles of the synthetic site, in publication order."""
    builder = _Builder(seed)
    for index in range(count):
        yield builder.next(index)


def as_record(article: SyntheticArticle, signature: bytes | None = None) -> ArticleRecord:
    """The record the crawl would store for the article's desktop page, fetched from a
    WARC file a month after publication."""
    fetched = (article.published_at + timedelta(days=30)).astimezone(UTC)
    return ArticleRecord(
        url=article.url,
        aid=article.aid,
        title=article.title,
        category=article.category,
        published_at=article.published_at,
        source=article.source,
        author=article.author,
        tags=article.tags,
        body=article.body,
        copyright_notice=NOTICE.format(title=article.title),
        rights_holder="原作者",
        site_name=SITE_NAME,
        site_copyright=SITE_COPYRIGHT,
        icp=ICP,
        fetched_at=fetched,
        content_hash=content_hash(article.body),
        extractor_version=EXTRACTOR_VERSION,
        page_urls=(article.url,),
        template="desktop",
        provenance=(
            {
                "kind": "warc",
                "url": article.url,
                "file": f"/srv/ylwt22/data/warc/ylwt22-{fetched:%Y%m%d}-00001-{WARC_HOST}.warc.gz",
                "offset": article.aid * 4099 % 100_000_000,
                "length": 3 * len(article.body.encode()) // 2,
                "record_id": f"<urn:uuid:{uuid.UUID(int=article.aid)}>",
            },
        ),
        signature=signature,
    )


# ---------------------------------------------------------------------------------------
# The snapshot's text, cut into pieces that can be recombined.

# A sentence as tokens: (text, n) where n > 0 marks a word of n characters that may be
# exchanged for another word of that length, and n == 0 text that stays.
_Tokens = tuple[tuple[str, int], ...]


@dataclass
class _Pools:
    sentences: dict[str, list[_Tokens]] = field(default_factory=dict)
    headings: dict[str, list[_Tokens]] = field(default_factory=dict)
    points: dict[str, list[_Tokens]] = field(default_factory=dict)  # what (一) names
    words: dict[int, list[str]] = field(default_factory=dict)  # by length
    all_sentences: list[_Tokens] = field(default_factory=list)


def _snapshot_lines() -> dict[str, list[tuple[str, str]]]:
    """The headings and paragraphs of the snapshot's distinct articles, by category."""
    texts: dict[str, list[tuple[str, str]]] = {c: [] for c in CATEGORY_DIRS}
    seen: set[str] = set()
    for record in expected_records():
        body = str(record["body"])
        if body in seen:  # the snapshot's reprint adds no text
            continue
        seen.add(body)
        for line in body.split("\n")[1:]:
            if _HEADING.match(line) and len(line) < 30:
                texts[str(record["category"])].append(("heading", _HEADING.sub("", line)))
            elif len(line) >= 40:
                texts[str(record["category"])].append(("para", line))
    return texts


@cache
def _pools() -> _Pools:
    texts = _snapshot_lines()
    # Words: the strings of two to four characters the snapshot uses more than once.
    counts: Counter[str] = Counter()
    for lines in texts.values():
        for _, line in lines:
            for run in _CJK.findall(line):
                for n in (2, 3, 4):
                    counts.update(run[i : i + n] for i in range(len(run) - n + 1))
    known = {word for word, count in counts.items() if count >= 2}
    pools = _Pools(words={n: sorted(w for w in known if len(w) == n) for n in (2, 3, 4)})

    def tokens(text: str) -> _Tokens:
        out: list[tuple[str, int]] = []
        i = 0
        while i < len(text):
            n = next((n for n in (4, 3, 2) if text[i : i + n] in known), 0)
            if n:
                out.append((text[i : i + n], n))
            elif out and out[-1][1] == 0:
                out[-1] = (out[-1][0] + text[i], 0)
            else:
                out.append((text[i], 0))
            i += n or 1
        return tuple(out)

    for category, lines in texts.items():
        sentences = pools.sentences.setdefault(category, [])
        headings = pools.headings.setdefault(category, [])
        points = pools.points.setdefault(category, [])
        for role, line in lines:
            if role == "heading":
                headings.append(tokens(line))
                continue
            parts = _SENTENCE.findall(_LABEL.sub("", line))
            if _LABEL.match(line) and len(parts) > 1:
                points.append(tokens(parts.pop(0).rstrip("。")))
            sentences.extend(tokens(s) for s in parts if len(s) >= 8)
        pools.all_sentences.extend(sentences)
    return pools


# ---------------------------------------------------------------------------------------
# Building articles.


@dataclass
class _Draft:
    """An article as lines that know what they are: title, editor, salutation,
    opening, heading, para or closing."""

    title: str
    category: str
    lines: list[tuple[str, str]]

    def body(self) -> str:
        return "\n".join(text for text, _ in self.lines)


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.pools = _pools()
        self.categories = list(CATEGORY_DIRS)
        # The originals of the last year, by index, for reprints to choose from.
        self.recent: list[int] = []
        self.drafts: dict[int, tuple[int, _Draft]] = {}  # index -> (aid, draft)

    def next(self, index: int) -> SyntheticArticle:
        rng = self.rng
        aid = FIRST_AID + index
        day = FIRST_DAY + timedelta(days=index // ARTICLES_PER_DAY)
        published = datetime(
            day.year, day.month, day.day,
            rng.randrange(7, 24), rng.randrange(60), rng.randrange(60), tzinfo=BEIJING,
        )  # fmt: skip
        original = None
        kind = None
        if self.recent and rng.random() < REPRINT_SHARE:
            kind = rng.choice(REPRINT_KINDS)
            changes = self._changes(kind)
            original = self._original(index, "years_moved" in changes)
            draft = self._reprint(self.drafts[original][1], changes)
            if rng.random() < 0.3:
                draft.category = rng.choice([c for c in self.categories if c != draft.category])
        else:
            draft = self._original_draft(rng.choice(self.categories), day.year)
            self.recent.append(index)
            self.drafts[index] = (aid, draft)
            # Reprints come back within a year: older originals are not needed.
            horizon = index - 366 * ARTICLES_PER_DAY
            while self.recent[0] < horizon:
                del self.drafts[self.recent.pop(0)]
        url = f"{SITE}/{CATEGORY_DIRS[draft.category]}/{day:%Y}/{day:%m%d}/{aid}.html"
        stem = draft.title.split("年", 1)[1] if _YEAR.match(draft.title) else draft.title
        return SyntheticArticle(
            aid=aid,
            url=url,
            title=draft.title,
            category=draft.category,
            published_at=published,
            source=rng.choice(SOURCES),
            author=rng.choice(AUTHORS),
            tags=(stem, draft.category),
            body=draft.body(),
            original=None if original is None else self.drafts[original][0],
            reprint_kind=kind,
        )

    # -- originals ----------------------------------------------------------------------

    def _words(self, tokens: _Tokens, year: int) -> str:
        rng, words = self.rng, self.pools.words
        text = "".join(
            rng.choice(words[n]) if n and rng.random() < SUBSTITUTION_RATE else part
            for part, n in tokens
        )

        # Years become the article's own; other numbers change, as another unit's would.
        def number(match: re.Match[str]) -> str:
            digits = match.group()
            if _YEAR.fullmatch(digits):
                return str(year - rng.randint(0, 1))
            if len(digits) == 1:
                return str(rng.randint(1, 9))
            return str(rng.randint(10 ** (len(digits) - 1), 10 ** len(digits) - 1))

        return _NUMBER.sub(number, text)

    def _paragraph(self, category: str, year: int, deck: list[_Tokens]) -> str:
        rng = self.rng
        sentences = []
        for _ in range(rng.randint(2, 6)):
            # Mostly the category's own sentences; now and then one from another kind.
            if deck and rng.random() < 0.8:
                source = deck.pop()
            else:
                source = rng.choice(self.pools.all_sentences)
            sentences.append(self._words(source, year))
        text = "".join(sentences)
        return text if text.endswith(("。", "！", "？", "”")) else text.rstrip("；，：、") + "。"

    def _subject(self, category: str) -> tuple[str, str]:
        """(title, subject) of a new article of the category."""
        rng = self.rng
        place = "".join(rng.sample(_PLACE_CHARS, 2)) + rng.choice(_PLACE_KINDS)
        unit = place + rng.choice(_UNITS)
        match category:
            case "党团工作":
                subject = place + rng.choice(_PARTY_UNITS)
                return subject + rng.choice(_PARTY_KINDS), subject
            case "工作总结" | "工作计划":
                return unit + rng.choice(_TOPICS) + category, unit
            case "述职报告":
                position = unit + rng.choice(_POSITIONS)
                return position + "述职报告", position
            case "心得体会":
                event = rng.choice(_EVENTS)
                return f"参加{place}{event}心得体会", event
            case _:
                theme = rng.choice(_THEMES)
                return f"{theme}主题演讲稿", theme

    def _original_draft(self, category: str, year: int) -> _Draft:
        rng, pools = self.rng, self.pools
        title, subject = self._subject(category)
        title = f"{year}年{title}"
        target = int(rng.triangular(_SHORTEST, _LONGEST, 1700))
        deck = rng.sample(pools.sentences[category], len(pools.sentences[category]))
        lines = [(title, "title")]
        if category in ("述职报告", "演讲稿") or rng.random() < 0.05:
            lines.append((rng.choice(_SALUTATIONS), "salutation"))
        opening = f"{year}年，{subject}" + self._paragraph(category, year, deck)
        lines.append((opening, "opening"))
        length = len(title) + len(opening)
        paragraphs = []
        while length < target:
            paragraph = self._paragraph(category, year, deck)
            paragraphs.append(paragraph)
            length += len(paragraph) + 1
        if category == "演讲稿":
            lines.extend((p, "para") for p in paragraphs)
            lines.append((rng.choice(_SPEECH_ENDS), "closing"))
        else:
            headings = rng.sample(pools.headings[category], len(pools.headings[category]))
            sections = max(1, min(len(headings), len(paragraphs) // 2, rng.randint(3, 5)))
            points = pools.points[category] or pools.sentences[category]
            cut = sorted(rng.sample(range(1, len(paragraphs)), sections - 1))
            bounds = itertools.pairwise([0, *cut, len(paragraphs)])
            for number, (start, end) in enumerate(bounds):
                heading = self._words(headings[number], year)
                lines.append((f"{_NUMERALS[number]}、{heading}", "heading"))
                # Half of the sections number their paragraphs as points: (一) what, then how.
                labelled = end - start > 1 and rng.random() < 0.5
                for n, paragraph in enumerate(paragraphs[start:end]):
                    point = ""
                    if labelled:
                        what = self._words(rng.choice(points), year).rstrip("。")
                        point = f"（{_NUMERALS[n % 10]}）{what}。"
                    lines.append((point + paragraph, "para"))
            if category == "述职报告":
                lines.append((rng.choice(_DUTY_ENDS), "closing"))
        draft = _Draft(title, category, lines)
        # Headings and points made it longer than planned: the last paragraphs go.
        while len(draft.body()) > _LONGEST:
            last = max(i for i, (_, role) in enumerate(lines) if role == "para")
            del lines[last]
            if lines[last - 1][1] == "heading" and (last == len(lines) or lines[last][1] != "para"):
                del lines[last - 1]
        return draft

    # -- reprints -----------------------------------------------------------------------

    def _changes(self, kind: str) -> list[str]:
        singles = [k for k in REPRINT_KINDS if k not in ("exact_copy", "combined")]
        if kind == "exact_copy":
            return []
        if kind == "combined":
            return sorted(self.rng.sample(singles, self.rng.randint(2, 3)), key=singles.index)
        return [kind]

    def _original(self, index: int, year_later: bool) -> int:
        """An original from the last year: a year ago when the years move on, else a
        few days to a year ago."""
        days = self.rng.randint(200, 365) if year_later else self.rng.randint(2, 365)
        target = index - days * ARTICLES_PER_DAY
        at = bisect.bisect_right(self.recent, target)
        return self.recent[max(at - 1, 0)] if target >= 0 else self.rng.choice(self.recent)

    def _reprint(self, original: _Draft, changes: Sequence[str]) -> _Draft:
        rng = self.rng
        draft = _Draft(original.title, original.category, list(original.lines))
        # Together the changes keep the reprint within MAX_CHANGED_SHARE of the original.
        budget = MAX_CHANGED_SHARE * len(draft.body()) / max(len(changes), 1)
        paras = [i for i, (_, role) in enumerate(draft.lines) if role == "para"]
        for change in changes:
            match change:
                case "years_moved":
                    draft.title = _YEAR.sub(lambda m: str(int(m.group()) + 1), draft.title)
                    draft.lines = [
                        (_YEAR.sub(lambda m: str(int(m.group()) + 1), text), role)
                        for text, role in draft.lines
                    ]
                case "title_changed":
                    draft.title = rng.choice(_title_variants(draft.title))
                case "sentence_edited":
                    i = rng.choice(paras)
                    sentences = _SENTENCE.findall(draft.lines[i][0])
                    j = max(range(len(sentences)), key=lambda k: len(sentences[k]))
                    sentences[j] = _edit_sentence_text(sentences[j], rng)
                    draft.lines[i] = ("".join(sentences), "para")
                case "paragraph_dropped":
                    small = [i for i in paras if len(draft.lines[i][0]) <= budget]
                    if small:
                        del draft.lines[rng.choice(small)]
                case "paragraph_added":
                    year = int(m.group()) if (m := _YEAR.search(draft.title)) else 2024
                    added = self._paragraph(draft.category, year, [])
                    while len(added) > budget:
                        added = added[: added.rfind("。", 0, len(added) - 1) + 1] or added[:40]
                    paras = [i for i, (_, role) in enumerate(draft.lines) if role == "para"]
                    draft.lines.insert(rng.choice(paras) + 1, (added, "para"))
                case "editor_line_changed":
                    line = rng.choice(_EDITOR_LINES).format(title=draft.title)
                    draft.lines = [(t, r) for t, r in draft.lines if r != "editor"]
                    draft.lines.insert(0, (line, "editor"))
            paras = [i for i, (_, role) in enumerate(draft.lines) if role == "para"]
        draft.lines = [(draft.title, "title") if r == "title" else (t, r) for t, r in draft.lines]
        return draft


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    articles = list(generate(count))
    for article in articles[:3]:
        print(article.url, article.published_at.isoformat(), article.category)
        print(article.body, end="\n\n")
    lengths = sorted(len(a.body) for a in articles)
    reprints = sum(a.original is not None for a in articles)
    print(
        f"{count} articles: {lengths[0]}-{lengths[-1]} characters "
        f"(median {lengths[len(lengths) // 2]}), {reprints} reprints"
    )


if __name__ == "__main__":
    main()
