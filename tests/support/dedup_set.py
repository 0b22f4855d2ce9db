"""A labelled set of reprints and look-alikes for measuring the dedup fingerprints.

Everything is built from the snapshot's own paragraphs (seeds/expected.json):

- bases: the real articles, and new articles recombined from real paragraphs of one
  category under a template's headings and stock lines; no two bases are near-duplicates;
- reprints of a base, as the site makes them (years moved on, a sentence edited, a
  paragraph added or dropped, another 小编 line or title, an exact copy, or several of
  these at once), each sharing at least 80% of its normalised text with its original and
  with the other reprints of the same original;
- look-alikes that are not duplicates: bases of one category sharing a few paragraphs,
  bases of one template sharing only its headings and stock lines, and bases of
  different templates sharing only the site's stock phrases.

The generator is seeded, reads no files but the seeds and writes none: every run gives
the same documents and pairs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from itertools import combinations

from pipelines.dedup import shingles
from tests.support.pages import expected_records

SEED = 2224
BEIJING = timezone(timedelta(hours=8))
SITE = "http://www.ylwt22.com"

CATEGORY_DIRS = {
    "党团工作": "dangtuangongzuo",
    "工作总结": "gongzuozongjie",
    "心得体会": "xindetihui",
    "述职报告": "shuzhibaogao",
    "演讲稿": "yanjianggao",
    "工作计划": "gongzuojihua",
}

# Kinds of labelled pair. A reprint pair is (original, reprint); a co-reprint pair joins
# two reprints of the same original.
REPRINT_KINDS = (
    "years_moved",
    "sentence_edited",
    "paragraph_added",
    "paragraph_dropped",
    "editor_line_changed",
    "title_changed",
    "exact_copy",
    "combined",
)
POSITIVE_KINDS = (*REPRINT_KINDS, "co_reprint", "snapshot_dup_group")
NEGATIVE_KINDS = ("shared_paragraphs", "same_template", "stock_phrases")

# The least share of normalised shingles (of the larger document) that a positive pair of
# each kind has in common. Numbers are normalised away, so moving the years on changes
# nothing the fingerprint sees.
MIN_SHARED = {
    "years_moved": 1.0,
    "exact_copy": 1.0,
    "snapshot_dup_group": 1.0,
    "sentence_edited": 0.8,
    "paragraph_added": 0.8,
    "paragraph_dropped": 0.8,
    "editor_line_changed": 0.8,
    "title_changed": 0.8,
    "combined": 0.8,
    "co_reprint": 0.8,
}
# Two bases never share more than this share of the smaller one's shingles, nor more
# than this many paragraphs: they are different documents, however alike their template.
BASE_MAX_CONTAINMENT = 0.5
BASE_MAX_SHARED_PARAGRAPHS = 3

REPRINTS_PER_KIND = 36
STOCK_PHRASE_PAIRS = 200
# Recombined bases per category, on top of its real articles.
RECOMBINED = {
    "党团工作": 15,
    "工作总结": 12,
    "心得体会": 12,
    "述职报告": 12,
    "演讲稿": 12,
    "工作计划": 12,
}


@dataclass(frozen=True)
class Doc:
    url: str
    title: str
    category: str
    published_at: datetime
    body: str


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    duplicate: bool
    kind: str


def shared_fraction(a: str, b: str) -> float:
    """|A ∩ B| / max(|A|, |B|) over the normalised shingles of two bodies: how much of
    the larger document the two have in common."""
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / max(len(sa), len(sb), 1)


# ---------------------------------------------------------------------------------------
# Templates: the headings and stock lines that documents of one kind share.


@dataclass(frozen=True)
class _Template:
    name: str
    salutations: tuple[str, ...]
    openings: tuple[str, ...]  # {year} and {subject} are filled in
    # (heading, role): the role says which paragraphs go under it; no heading for "".
    sections: tuple[tuple[str, str], ...]
    closings: tuple[str, ...]


_SUMMARY = _Template(
    "summary",
    (),
    (
        "{year}年，{subject}在上级部门的正确领导下，坚持围绕中心、服务大局，认真履行工作"
        "职责，扎实推进各项重点任务，较好地完成了全年目标任务。现将有关工作情况总结如下：",
        "一年来，{subject}紧紧围绕年初确定的目标任务，凝心聚力、真抓实干，各项工作取得了"
        "新的进展。现将全年工作总结如下：",
        "{year}年以来，{subject}坚持以问题为导向、以落实为关键，统筹推进各项工作，取得了"
        "较好成效。现将工作情况总结如下：",
    ),
    (("一、主要做法与成效", "main"), ("二、存在的问题", "problem"), ("三、下一步工作打算", "plan")),
    (
        "新的一年，我们将以更加饱满的热情、更加务实的作风，奋力开创各项工作新局面。",
        "总之，我们将认真总结经验，正视存在的不足，推动各项工作再上新台阶。",
    ),
)
_REPORT = _Template(
    "report",
    (),
    (
        "根据上级有关工作要求，现将{subject}{year}年工作开展情况报告如下：",
        "{year}年，{subject}在上级团组织的指导下，坚持把思想政治引领放在首位，各项工作"
        "有序推进。现将有关情况报告如下：",
    ),
    (
        ("一、基本情况", "main"),
        ("二、主要做法", "main"),
        ("三、存在的问题", "problem"),
        ("四、下一步工作思路", "plan"),
    ),
    (
        "下一步，我们将认真贯彻上级部署，坚持问题导向，推动各项工作取得新的更大成效。",
        "特此报告。",
    ),
)
_PLAN = _Template(
    "plan",
    (),
    (
        "为进一步做好{subject}{year}年各项工作，根据上级有关要求，结合工作实际，特制定本工作计划。",
        "为扎实推进{year}年各项工作，确保全年目标任务圆满完成，{subject}结合实际，制定"
        "工作计划如下：",
    ),
    (
        ("一、指导思想", "main"),
        ("二、工作目标", "main"),
        ("三、主要工作任务", "main"),
        ("四、保障措施", "main"),
    ),
    (
        "总之，我们将紧紧围绕年度目标任务，真抓实干、务求实效，确保本计划各项任务落到实处。",
        "以上计划如遇上级有新的部署，将根据实际情况及时调整。",
    ),
)
_DUTY = _Template(
    "duty",
    ("尊敬的各位领导、同志们：", "各位领导、同事们："),
    (
        "{year}年，我在单位领导班子的正确领导下，在同事们的支持和帮助下，认真履行{subject}"
        "岗位职责，较好地完成了各项工作任务。现将一年来的履职情况报告如下，请予评议。",
        "一年来，作为{subject}，我始终坚持以高标准严格要求自己，恪尽职守、勤勉工作。下面，"
        "我将本人履职情况报告如下：",
    ),
    (
        ("一、加强学习，提升能力", "main"),
        ("二、履职尽责，工作成效", "main"),
        ("三、存在的不足", "problem"),
        ("四、下一步工作打算", "plan"),
    ),
    (
        "以上是我的述职报告，不妥之处，恳请各位领导和同志们批评指正。谢谢大家！",
        "以上述职，请各位领导和同志们评议。",
    ),
)
_REFLECTION = _Template(
    "reflection",
    (),
    (
        "近期，我认真参加了{subject}，通过学习和思考，深受启发、收获颇多。下面，结合自身"
        "实际，谈几点体会。",
        "按照统一安排，我参加了{year}年{subject}。时间虽短，但收获很大，现将个人心得体会总结如下：",
    ),
    (
        ("一、提高思想认识", "main"),
        ("二、在实践中深化体会", "main"),
        ("三、今后的努力方向", "plan"),
    ),
    (
        "以上是我的几点粗浅体会。在今后的工作和学习中，我将不断总结、不断提高。",
        "总之，这次经历让我受益匪浅，我将把所学所悟转化为实际行动。",
    ),
)
_SPEECH = _Template(
    "speech",
    ("尊敬的各位领导、老师，亲爱的同学们：", "尊敬的各位领导、亲爱的同事们："),
    (
        "大家好！今天我演讲的题目是《{subject}》。",
        "大家好！很荣幸能站在这里和大家分享我的心声，我演讲的题目是《{subject}》。",
    ),
    (("", "main"),),
    ("我的演讲完毕，谢谢大家！", "谢谢大家！"),
)
_CATEGORY_TEMPLATES = {
    "党团工作": (_SUMMARY, _REPORT, _PLAN),
    "工作总结": (_SUMMARY,),
    "心得体会": (_REFLECTION,),
    "述职报告": (_DUTY,),
    "演讲稿": (_SPEECH,),
    "工作计划": (_PLAN,),
}
# Stock sentences the site's articles of every kind are padded with.
_STOCK_SENTENCES = (
    "在今后的工作中，我们将继续发扬成绩、克服不足，以更加饱满的热情投入到各项工作中去。",
    "回顾过去，我们取得了一定的成绩，但也清醒地认识到工作中还存在一些差距和不足。",
    "成绩属于过去，新的征程已经开启，我们将以更加昂扬的姿态迎接新的挑战。",
    "我深知，只有不断学习、不断实践，才能跟上新形势、新任务的要求。",
    "百尺竿头，更进一步。我们将始终保持奋发有为的精神状态，努力创造新的业绩。",
    "以上是本人的一些粗浅认识，不妥之处，敬请批评指正。",
    "路虽远，行则将至；事虽难，做则必成。让我们携手并进，共同创造更加美好的明天。",
    "千里之行，始于足下。只要我们脚踏实地、久久为功，就一定能够实现既定的目标。",
)
# The editor's line the site puts before a document; extraction normally removes it.
_EDITOR_LINES = (
    "下面是小编为大家整理的{title}，供大家参考。",
    "下面是小编为大家整理的范文，供大家参考。",
    "以下是小编精心整理的{title}，欢迎阅读与收藏。",
    "{title}由网友投稿，小编为大家整理，希望对大家有所帮助。",
    "下面是小编为大家收集整理的{title}，欢迎大家借鉴与参考，希望对大家有所帮助。",
    "本文是小编为大家整理的{title}范文，仅供参考，欢迎阅读。",
    "小编为你整理了{title}，希望对你有所启发。",
)

# Subjects of the recombined articles, by category and template.
_SUBJECTS = {
    "党团工作": (
        "县委办公室",
        "城南街道",
        "阳光社区",
        "市第二中学",
        "县人民医院",
        "经济开发区",
        "县交通运输局",
        "东湖村",
        "区财政局",
        "县自然资源局",
        "市职业技术学院",
        "县农商银行",
        "城关镇",
        "区文化馆",
        "县消防救援大队",
        "市实验小学",
        "县国资公司",
        "柳河乡",
    ),
    "工作总结": (
        "县档案馆",
        "区市场监督管理局",
        "县供电公司",
        "市住房公积金管理中心",
        "县融媒体中心",
        "区城市管理局",
        "县林业局",
        "镇综合执法队",
        "县人民法院",
        "市第三人民医院",
        "区教育局",
        "县水务局",
        "县统计局",
        "开发区管委会",
    ),
    "工作计划": (
        "县科技局",
        "区社区卫生服务中心",
        "市第一中学教务处",
        "县疾控中心",
        "镇农业服务中心",
        "区商务局",
        "公司人力资源部",
        "县文化馆",
        "市第四小学德育处",
        "县生态环境局",
        "区退役军人事务局",
        "街道综治中心",
        "县医保局",
        "市少年宫",
    ),
    "心得体会": (
        "主题教育专题学习",
        "新入职教师岗前培训",
        "中青年干部培训班学习",
        "安全生产警示教育",
        "廉政教育基地参观学习",
        "社区志愿服务",
        "企业新员工入职培训",
        "党史学习教育",
        "红色教育基地研学",
        "班主任工作经验交流会",
        "新生军训",
        "顶岗实习",
        "读书分享活动",
        "乡村振兴调研",
    ),
    "述职报告": (
        "社区党委书记",
        "医院护理部主任",
        "中学教务处主任",
        "公司销售部经理",
        "乡镇财政所所长",
        "街道办事处副主任",
        "银行支行行长",
        "人力资源部经理",
        "幼儿园园长",
        "村党支部书记",
        "项目部经理",
        "派出所所长",
        "县档案馆馆长",
        "车间主任",
    ),
    "演讲稿": (
        "国庆节主题演讲稿：我与祖国共成长",
        "教师节主题演讲稿：用爱点亮每一颗星",
        "安全生产月主题演讲稿：安全责任重于泰山",
        "爱岗敬业主题演讲稿：在平凡岗位上闪光",
        "读书节主题演讲稿：让阅读成为习惯",
        "廉洁文化主题演讲稿：清风正气守初心",
        "班干部竞选演讲稿：做同学们的贴心人",
        "开学典礼演讲稿：新学期新起点",
        "青年干部座谈会发言稿：青春在基层闪光",
        "劳动节主题演讲稿：劳动创造美好生活",
        "诚信建设主题演讲稿：诚信是立身之本",
        "科技创新主题演讲稿：创新点亮未来",
        "志愿服务主题演讲稿：让爱心传递温暖",
        "环境保护主题演讲稿：守护绿水青山",
    ),
}
_TITLE_SUFFIX = {
    ("党团工作", "summary"): "党支部工作总结",
    ("党团工作", "report"): "团委工作开展情况报告",
    ("党团工作", "plan"): "党建工作计划",
    ("工作总结", "summary"): "工作总结",
    ("工作计划", "plan"): "工作计划",
    ("心得体会", "reflection"): "心得体会",
    ("述职报告", "duty"): "述职报告",
    ("演讲稿", "speech"): "",
}

# ---------------------------------------------------------------------------------------
# Documents under construction: lines that know what they are.

_HEADING = re.compile(r"^[一二三四五六七八九十]+、")
_LABEL = re.compile(r"^[（(]([一二三四五六七八九十]+)[）)]")
_NUMERALS = "一二三四五六七八九十"
# The years the site moves on when it reprints (not 2003 in a quotation).
_YEAR = re.compile(r"(?<!\d)(20(?:1[89]|2\d))(?!\d)")
_SENTENCE_END = re.compile(r"(?<=[。！？；])")


@dataclass(frozen=True)
class _Line:
    text: str
    # title, editor, heading, stock (salutations, openings, closings) or para
    role: str
    unit: int | None = None  # the paragraph of the category's pool this line is


@dataclass(frozen=True)
class _Unit:
    text: str  # without its (一) label
    role: str  # main, problem or plan: which heading it stood under
    labelled: bool
    source: str  # url of the real article it comes from


@dataclass
class _Draft:
    id: int
    title: str
    category: str
    pool: str  # the category whose paragraphs it is made of
    template: str
    published_at: datetime
    lines: list[_Line]
    stock: tuple[str, ...] = ()  # the stock sentences it was padded with
    shingles: frozenset[str] = field(default_factory=frozenset)

    def body(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def units(self) -> list[int]:
        return [line.unit for line in self.lines if line.unit is not None]

    def doc(self) -> Doc:
        yyyy, mmdd = self.published_at.strftime("%Y"), self.published_at.strftime("%m%d")
        return Doc(
            url=f"{SITE}/{CATEGORY_DIRS[self.category]}/{yyyy}/{mmdd}/{self.id}.html",
            title=self.title,
            category=self.category,
            published_at=self.published_at,
            body=self.body(),
        )


def _with_lines(draft: _Draft, lines: list[_Line], title: str | None = None) -> _Draft:
    new = replace(draft, lines=lines, title=draft.title if title is None else title)
    new.shingles = frozenset(shingles(new.body()))
    return new


def _finish(draft: _Draft) -> _Draft:
    draft.shingles = frozenset(shingles(draft.body()))
    return draft


def _shared(a: _Draft, b: _Draft) -> float:
    return len(a.shingles & b.shingles) / max(len(a.shingles), len(b.shingles), 1)


def _containment(a: _Draft, b: _Draft) -> float:
    return len(a.shingles & b.shingles) / max(min(len(a.shingles), len(b.shingles)), 1)


# ---------------------------------------------------------------------------------------
# Ids and dates, as the site gives them: ids grow with the date of publication.

_ID_ANCHOR = (date(2022, 8, 25), 300622)
_IDS_PER_DAY = 38


class _Ids:
    def __init__(self, taken: Sequence[int]) -> None:
        self._taken = set(taken)

    def new(self, day: date, rng: random.Random, after: int = 0) -> int:
        anchor_day, anchor_id = _ID_ANCHOR
        candidate = max(
            anchor_id + (day - anchor_day).days * _IDS_PER_DAY + rng.randrange(_IDS_PER_DAY),
            after + 1 + rng.randrange(_IDS_PER_DAY),
        )
        while candidate in self._taken:
            candidate += 1
        self._taken.add(candidate)
        return candidate


def _article_id(url: str) -> int:
    return int(url.rsplit("/", 1)[1].split(".", 1)[0])


def _random_time(day: date, rng: random.Random) -> datetime:
    return datetime(
        day.year,
        day.month,
        day.day,
        rng.randrange(7, 24),
        rng.randrange(60),
        rng.randrange(60),
        tzinfo=BEIJING,
    )


# ---------------------------------------------------------------------------------------
# The snapshot: real articles and their paragraphs.


def _role_of(heading: str) -> str:
    if re.search("问题|不足", heading):
        return "problem"
    if re.search("打算|思路|方向|下一步", heading):
        return "plan"
    return "main"


def _is_stock_line(line: str) -> bool:
    """Salutations and short connecting lines: not paragraphs of their own."""
    return len(line) < 40 or line.startswith(("大家好", "附：", "总之", "以上是"))


def _real_article(record: dict[str, object], pool: list[_Unit], ids: dict[str, int]) -> _Draft:
    """The article as a draft whose paragraphs join the category's pool."""
    url = str(record["url"])
    body_lines = str(record["body"]).split("\n")
    lines = [_Line(body_lines[0], "title")]
    role, seen_heading, seen_opening = "main", False, False
    for text in body_lines[1:]:
        if _HEADING.match(text) and len(text) < 30:
            role, seen_heading = _role_of(text), True
            lines.append(_Line(text, "heading"))
        elif _is_stock_line(text):
            lines.append(_Line(text, "stock"))
        elif not seen_heading and not seen_opening:
            # The opening names the article's own subject: it does not move to another.
            seen_opening = True
            lines.append(_Line(text, "para"))
        else:
            stripped = _LABEL.sub("", text)
            unit = _Unit(stripped, role, stripped != text, url)
            if unit.text not in ids:
                ids[unit.text] = len(pool)
                pool.append(unit)
            lines.append(_Line(text, "para", ids[unit.text]))
    category = str(record["category"])
    return _finish(
        _Draft(
            id=_article_id(url),
            title=str(record["title"]),
            category=category,
            pool=category,
            template="real",
            published_at=datetime.fromisoformat(str(record["published_at"])),
            lines=lines,
        )
    )


def _far_apart(candidate: _Draft, bases: Sequence[_Draft]) -> bool:
    for base in bases:
        if _containment(candidate, base) > BASE_MAX_CONTAINMENT:
            return False
        if base.pool == candidate.pool:
            common = set(base.units()) & set(candidate.units())
            if len(common) > BASE_MAX_SHARED_PARAGRAPHS:
                return False
    return True


# ---------------------------------------------------------------------------------------
# Reprints: the changes the site makes when it publishes a document again.

_SYNONYMS = (
    ("进一步", "更加"),
    ("积极", "主动"),
    ("认真", "扎实"),
    ("提升", "提高"),
    ("加强", "强化"),
    ("明显", "显著"),
    ("不断", "持续"),
    ("全面", "充分"),
    ("及时", "第一时间"),
    ("努力", "全力"),
    ("群众", "百姓"),
    ("重要", "关键"),
)
_INSERTED_CLAUSES = (
    "在上级部门的关心支持下，",
    "通过全体人员的共同努力，",
    "坚持高标准、严要求，",
    "按照年初制定的工作计划，",
    "经过认真研究，",
)


def _bump_year(match: re.Match[str]) -> str:
    return str(int(match.group(1)) + 1)


def _move_years(draft: _Draft, rng: random.Random, pool: Sequence[_Unit]) -> _Draft:
    lines = [replace(line, text=_YEAR.sub(_bump_year, line.text)) for line in draft.lines]
    return _with_lines(draft, lines, title=_YEAR.sub(_bump_year, draft.title))


def _edit_sentence_text(sentence: str, rng: random.Random) -> str:
    edits: list[Callable[[str], str]] = []
    found = [(a, b) for a, b in _SYNONYMS if a in sentence] + [
        (b, a) for a, b in _SYNONYMS if b in sentence
    ]
    if found:
        old, new = rng.choice(found)
        edits.append(lambda s: s.replace(old, new, 1))
    clauses = sentence.split("，")
    if len(clauses) >= 3:
        drop = rng.randrange(1, len(clauses) - 1)
        edits.append(lambda s: "，".join(c for i, c in enumerate(clauses) if i != drop))
    if len(clauses) >= 2:
        clause = rng.choice(_INSERTED_CLAUSES)
        edits.append(lambda s: s.replace("，", "，" + clause, 1))
    chosen = rng.sample(edits, min(len(edits), rng.randint(1, 2)))
    for edit in chosen:
        sentence = edit(sentence)
    return sentence


def _edit_sentence(draft: _Draft, rng: random.Random, pool: Sequence[_Unit]) -> _Draft:
    paras = [i for i, line in enumerate(draft.lines) if line.role == "para"]
    while True:
        index = rng.choice(paras)
        sentences = [s for s in _SENTENCE_END.split(draft.lines[index].text) if s]
        long_ones = [i for i, s in enumerate(sentences) if len(s) >= 25]
        if not long_ones:
            continue
        which = rng.choice(long_ones)
        edited = _edit_sentence_text(sentences[which], rng)
        if edited != sentences[which]:
            break
    sentences[which] = edited
    lines = list(draft.lines)
    # An edited paragraph is no longer the pool's paragraph.
    lines[index] = _Line("".join(sentences), "para")
    return _with_lines(draft, lines)


def _drop_paragraph(draft: _Draft, rng: random.Random, pool: Sequence[_Unit]) -> _Draft:
    paras = [i for i, line in enumerate(draft.lines) if line.role == "para"]
    index = rng.choice(paras)
    return _with_lines(draft, draft.lines[:index] + draft.lines[index + 1 :])


def _add_paragraph(draft: _Draft, rng: random.Random, pool: Sequence[_Unit]) -> _Draft:
    present = set(draft.units())
    unit_id = rng.choice([i for i in range(len(pool)) if i not in present])
    paras = [i for i, line in enumerate(draft.lines) if line.role == "para"]
    index = rng.choice(paras) + 1
    added = _Line(pool[unit_id].text, "para", unit_id)
    return _with_lines(draft, [*draft.lines[:index], added, *draft.lines[index:]])


def _change_editor_line(draft: _Draft, rng: random.Random, pool: Sequence[_Unit]) -> _Draft:
    current = [line.text for line in draft.lines if line.role == "editor"]
    lines = [line for line in draft.lines if line.role != "editor"]
    while True:
        text = rng.choice(_EDITOR_LINES).format(title=draft.title)
        if text not in current:
            break
    return _with_lines(draft, [_Line(text, "editor"), *lines])


def _title_variants(title: str) -> list[str]:
    match = re.match(r"^(\d{4})年(.+)$", title)
    variants = [f"{title}范文", f"{title}（通用版）", f"最新{title}", f"{title}精选"]
    if match:
        year, stem = match.groups()
        variants += [stem, f"{year}年度{stem}", f"{stem}（{year}年）"]
    return [v for v in variants if v != title]


def _change_title(draft: _Draft, rng: random.Random, pool: Sequence[_Unit]) -> _Draft:
    title = rng.choice(_title_variants(draft.title))
    lines = [_Line(title, "title") if line.role == "title" else line for line in draft.lines]
    return _with_lines(draft, lines, title=title)


_Change = Callable[[_Draft, random.Random, Sequence[_Unit]], _Draft]
# In the order they are applied when a reprint combines several.
_CHANGES: dict[str, _Change] = {
    "years_moved": _move_years,
    "title_changed": _change_title,
    "sentence_edited": _edit_sentence,
    "paragraph_dropped": _drop_paragraph,
    "paragraph_added": _add_paragraph,
    "editor_line_changed": _change_editor_line,
}


# ---------------------------------------------------------------------------------------
# Building the set.


class _Builder:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.records = expected_records()
        self.ids = _Ids([_article_id(str(r["url"])) for r in self.records])
        # Each category's real paragraphs, and how many bases use each.
        self.pools: dict[str, list[_Unit]] = {c: [] for c in CATEGORY_DIRS}
        self.pool_index: dict[str, dict[str, int]] = {c: {} for c in CATEGORY_DIRS}
        self.uses: dict[str, list[int]] = {}
        s1 = sorted(
            (r for r in self.records if r["dup_group"] == "S1"),
            key=lambda r: str(r["published_at"]),
        )
        self.s1_original, self.s1_reprint = s1

    def real_articles(self) -> list[_Draft]:
        """Every real article but the snapshot's own reprint."""
        return [
            _real_article(r, self.pools[str(r["category"])], self.pool_index[str(r["category"])])
            for r in self.records
            if r is not self.s1_reprint
        ]

    def recombined_bases(self, bases: list[_Draft]) -> None:
        """Adds RECOMBINED new articles per category to bases, each far from all before it."""
        for category, count in RECOMBINED.items():
            pool = self.pools[category]
            self.uses[category] = uses = [0] * len(pool)
            for base in bases:
                if base.pool == category:
                    for unit_id in base.units():
                        uses[unit_id] += 1
            subjects = list(_SUBJECTS[category])
            self.rng.shuffle(subjects)
            templates = _CATEGORY_TEMPLATES[category]
            made = 0
            for attempt in range(count * 200):
                if made == count:
                    break
                day = date(2021, 3, 1) + timedelta(days=self.rng.randrange(1000))
                template = templates[attempt % len(templates)]
                candidate = self.recombine(category, template, subjects[made], day)
                if _far_apart(candidate, bases):
                    candidate.id = self.ids.new(day, self.rng)
                    bases.append(candidate)
                    for unit_id in candidate.units():
                        uses[unit_id] += 1
                    made += 1
            if made < count:
                raise RuntimeError(f"only {made} of {count} distinct {category} bases")

    def recombine(self, category: str, template: _Template, subject: str, day: date) -> _Draft:
        """A new article of the category: the template's stock lines and headings around
        paragraphs drawn from the category's pool, the least used first."""
        rng, pool, uses = self.rng, self.pools[category], self.uses[category]
        title = f"{day.year}年{subject}{_TITLE_SUFFIX[category, template.name]}"
        lines = [_Line(title, "title")]
        if template.salutations:
            lines.append(_Line(rng.choice(template.salutations), "stock"))
        opening = rng.choice(template.openings).format(year=day.year, subject=subject)
        lines.append(_Line(opening, "stock"))

        taken: list[int] = []

        def draw(role: str) -> _Unit:
            # No more than BASE_MAX_SHARED_PARAGRAPHS from any one real article, or the
            # new article would be an excerpt of it.
            def open_units(wanted: str) -> list[int]:
                return [
                    i
                    for i, u in enumerate(pool)
                    if u.role == wanted
                    and i not in taken
                    and sum(pool[t].source == u.source for t in taken) < BASE_MAX_SHARED_PARAGRAPHS
                ]

            candidates = open_units(role)
            if len(candidates) < 3 and role != "main":
                candidates += open_units("main")
            weights = [1.0 / (1 + uses[i]) ** 3 for i in candidates]
            taken.append(rng.choices(candidates, weights)[0])
            return pool[taken[-1]]

        sources = len({unit.source for unit in pool})
        total = rng.randint(5, min(8, sources * BASE_MAX_SHARED_PARAGRAPHS))
        main_sections = sum(role == "main" for _, role in template.sections)
        main_total = total - (len(template.sections) - main_sections)
        stock = tuple(rng.sample(_STOCK_SENTENCES, rng.randint(1, 2)))
        main_seen = 0
        for heading, role in template.sections:
            if heading:
                lines.append(_Line(heading, "heading"))
            if role == "main":
                # The main paragraphs spread over the main sections, the first ones fuller.
                count = main_total // main_sections + (main_seen < main_total % main_sections)
                main_seen += 1
            else:
                count = 1
            number = 0
            for _ in range(count):
                unit = draw(role)
                # Labelled paragraphs are numbered afresh, as the article's own points.
                text = f"（{_NUMERALS[number]}）{unit.text}" if unit.labelled else unit.text
                number += unit.labelled
                lines.append(_Line(text, "para", taken[-1]))
        lines.extend(_Line(sentence, "stock") for sentence in stock)
        lines.append(_Line(rng.choice(template.closings), "stock"))
        return _finish(
            _Draft(
                id=0,
                title=title,
                category=category,
                pool=category,
                template=template.name,
                published_at=_random_time(day, rng),
                lines=lines,
                stock=stock,
            )
        )

    def reprint(self, original: _Draft, kind: str) -> _Draft:
        """The original published again with the changes of the kind; its id is given
        when it is kept."""
        rng = self.rng
        if kind == "combined":
            changes = rng.sample(list(_CHANGES), rng.randint(2, 3))
            changes.sort(key=list(_CHANGES).index)
        elif kind == "exact_copy":
            changes = []
        else:
            changes = [kind]
        draft = original
        for change in changes:
            draft = _CHANGES[change](draft, rng, self.pools[original.pool])
        # Years are moved on when the document comes back a year later; other reprints
        # follow within days or months.
        days = rng.randint(200, 365) if "years_moved" in changes else rng.randint(2, 365)
        day = (original.published_at + timedelta(days=days)).date()
        category = original.category
        if rng.random() < 0.3:
            category = rng.choice([c for c in CATEGORY_DIRS if c != original.category])
        return replace(draft, id=0, category=category, published_at=_random_time(day, rng))

    def fitting_reprint(
        self, original: _Draft, kind: str, group: Sequence[_Draft]
    ) -> _Draft | None:
        """A reprint of the kind that keeps MIN_SHARED with the original and with its
        other reprints, or None if a few tries find none."""
        for _ in range(20):
            reprint = self.reprint(original, kind)
            if _shared(original, reprint) >= MIN_SHARED[kind] and all(
                _shared(other, reprint) >= MIN_SHARED["co_reprint"] for other in group
            ):
                reprint.id = self.ids.new(reprint.published_at.date(), self.rng, original.id)
                return reprint
        return None

    def reprints(self, bases: Sequence[_Draft]) -> tuple[list[_Draft], list[Pair]]:
        """REPRINTS_PER_KIND reprints of every kind, spread over the bases, and the pairs
        they make with their originals and with each other."""
        s1_id = _article_id(str(self.s1_original["url"]))
        originals = [b for b in bases if b.id != s1_id]
        self.rng.shuffle(originals)
        kinds = [kind for kind in REPRINT_KINDS for _ in range(REPRINTS_PER_KIND)]
        self.rng.shuffle(kinds)
        groups: dict[int, list[_Draft]] = {}
        reprints: list[_Draft] = []
        pairs: list[Pair] = []
        for n, kind in enumerate(kinds):
            # A change too large for one original's other reprints goes to the next one.
            for offset in range(len(originals)):
                original = originals[(n + offset) % len(originals)]
                group = groups.setdefault(original.id, [])
                reprint = self.fitting_reprint(original, kind, group)
                if reprint is not None:
                    break
            else:
                raise RuntimeError(f"no original takes a {kind} reprint")
            group.append(reprint)
            reprints.append(reprint)
            pairs.append(Pair(original.doc().url, reprint.doc().url, True, kind))
        for group in groups.values():
            ordered = sorted(group, key=lambda d: (d.published_at, d.id))
            pairs.extend(
                Pair(a.doc().url, b.doc().url, True, "co_reprint")
                for a, b in combinations(ordered, 2)
            )
        pairs.append(
            Pair(
                str(self.s1_original["url"]),
                str(self.s1_reprint["url"]),
                True,
                "snapshot_dup_group",
            )
        )
        reprints.append(_real_article(self.s1_reprint, [], {}))
        return reprints, pairs

    def look_alikes(self, bases: Sequence[_Draft]) -> list[Pair]:
        """Pairs of bases that share a few paragraphs, a template, or stock phrases."""
        pairs: list[Pair] = []
        stock_pairs: list[Pair] = []
        for a, b in combinations(bases, 2):
            first, second = sorted((a, b), key=lambda d: (d.published_at, d.id))
            if a.pool == b.pool and set(a.units()) & set(b.units()):
                kind = "shared_paragraphs"
            elif a.template == b.template != "real":
                kind = "same_template"
            elif set(a.stock) & set(b.stock):
                kind = "stock_phrases"
            else:
                continue
            pair = Pair(first.doc().url, second.doc().url, False, kind)
            (stock_pairs if kind == "stock_phrases" else pairs).append(pair)
        # Pairs of templates far outnumber the rest: a sample of them is enough.
        pairs.extend(self.rng.sample(stock_pairs, min(STOCK_PHRASE_PAIRS, len(stock_pairs))))
        return pairs


def build() -> tuple[list[Doc], list[Pair]]:
    """The labelled documents and pairs; the same on every call."""
    builder = _Builder()
    bases = builder.real_articles()
    builder.recombined_bases(bases)
    reprints, positives = builder.reprints(bases)
    negatives = builder.look_alikes(bases)
    return [d.doc() for d in (*bases, *reprints)], positives + negatives
