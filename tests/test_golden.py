"""Golden cases of the body's extraction (tests/golden/cases, one folder per case; see
tests/golden/__init__.py to add one or regenerate its output.json).

Every case's item must equal its hand-checked output.json. Independently of the
output.json files: the cases that only mark the snapshot's documents up another way must
give the snapshot's hand-checked bodies (seeds/expected.json), every element that hides
text or is the site's furniture carries the marker ZQXJ and it never reaches a body, and
each markup's own lines are checked here line by line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from scrapy.exceptions import DropItem

from tests import golden
from tests.golden import CASES, case_names, expected, extract, item, response
from tests.golden import __main__ as golden_cli
from tests.support.pages import expected_records, through_pipelines

NAMES = case_names()
# Put into every element whose text a reader never sees, and every piece of furniture.
MARKER = "ZQXJ"
FIELDS = ("title", "category", "source", "author", "body", "copyright_notice", "site_name",
          "site_copyright", "icp")  # fmt: skip

# Cases that mark up one of the snapshot's documents another way: each must give that
# document's hand-checked body, every paragraph of it and nothing else.
SAME_DOCUMENT = {
    "br_only": "316197",
    "deep_nesting": "316197",
    "div_paragraphs": "316197",
    "gb2312_ncr": "319543",
    "headings": "316197",
    "hidden_text": "316197",
    "images": "316197",
    "indents": "316197",
    "keyword_links": "316197",
    "mobile_word_html": "320094",
    "scripts_and_comments": "316197",
    "site_chrome": "316197",
    "word_html": "316197",
}


def page_text(name: str) -> str:
    body = response(name)[1]
    return body.decode("gb18030" if name == "gb2312_ncr" else "utf-8")


def snapshot_body(aid: str) -> str:
    return next(r["body"] for r in expected_records() if r["url"].endswith(f"/{aid}.html"))


@pytest.mark.parametrize("name", NAMES)
def test_the_case_gives_its_hand_checked_item(name: str) -> None:
    assert extract(name) == expected(name)


def test_every_case_folder_holds_a_response_and_its_item() -> None:
    folders = sorted(path.name for path in CASES.iterdir() if path.is_dir())
    assert folders == NAMES
    for name in NAMES:
        info = json.loads((CASES / name / "info.json").read_text(encoding="utf-8"))
        assert set(info) == {"url", "status", "headers"}
        assert info["status"] == 200
        assert (CASES / name / "body.html").stat().st_size > 0
        assert (CASES / name / "output.json").is_file()


@pytest.mark.parametrize("name", sorted(SAME_DOCUMENT))
def test_every_markup_of_a_document_gives_the_same_text(name: str) -> None:
    stored = through_pipelines(item(name))
    assert stored.problems == []
    assert stored.body == snapshot_body(SAME_DOCUMENT[name])


MARKED = [name for name in NAMES if MARKER in page_text(name)]


def test_the_cases_that_hide_text_or_hold_furniture_are_marked() -> None:
    assert set(MARKED) >= {"hidden_text", "scripts_and_comments", "site_chrome", "word_html",
                           "images", "mobile_word_html"}  # fmt: skip


@pytest.mark.parametrize("name", MARKED)
def test_hidden_text_and_furniture_never_reach_the_item(name: str) -> None:
    extracted = through_pipelines(item(name))
    for field in FIELDS:
        assert MARKER not in getattr(extracted, field), field
    assert not any(MARKER in tag for tag in extracted.tags)
    assert sum(extracted.removed.values()) > 0


def test_what_was_left_out_is_counted_by_kind() -> None:
    hidden = item("hidden_text").removed
    # 27 elements hidden by their style, the hidden attribute or a hiding class, and the
    # <style> that named the class; the site's own ad slot.
    assert hidden == {"hidden": 27, "style": 1, "ad": 1}
    chrome = item("site_chrome").removed
    assert chrome == {"ad": 4, "chrome": 12, "pager": 1}
    unseen = item("scripts_and_comments").removed
    assert unseen["comment"] == 5
    assert unseen["script"] == 2
    assert unseen["noscript"] == 2
    assert unseen["template"] == 1


def test_text_hidden_only_when_printing_is_kept() -> None:
    html = page_text("hidden_text")
    assert "@media print { .dy { display: none } }" in html
    assert '<span class="dy">坚持以习近平</span>' in html
    assert "坚强领导下，坚持以习近平新时代" in item("hidden_text").body


def test_a_download_prompt_goes_with_its_link_but_not_the_paragraph_before_it() -> None:
    # "…总结如下：<br /><a href="/plus/stow.php…">收藏本文</a>": the paragraph stays.
    html = page_text("site_chrome")
    assert '总结如下：<br />\n<a href="/plus/stow.php' in html
    lines = item("site_chrome").body.split("\n")
    assert lines[1].endswith("现将本季度工作情况总结如下：")


LOOKALIKES = (
    "社区将建立党员学习资料库，居民可在社区服务中心免费下载、打印学习材料，方便党员群众随时学习。",
    "加强版权保护意识，尊重他人著作权，是党员干部应有的素养。",
    "推荐各网格结合实际，认真抓好贯彻落实，欢迎居民群众通过社区公众号分享、转发活动信息。",
    "本季度社区协助辖区商户规范设置户外广告牌12块，清理违规小广告300余处。",
    "相关政策可登录中国政府网查询下载。",
    "注：本总结数据截至2023年9月30日[1]。",
    "下面是本季度“红色议事会”议定事项的办理情况。",
    "社区党支部书记在会上作了讲话。",
    "本文件自印发之日起施行，由社区党支部负责解释。",
    "居民可点击社区公众号菜单中的“办事指南”下载表格。",
)


def test_paragraphs_that_talk_about_downloads_copyright_or_ads_stay() -> None:
    lines = through_pipelines(item("lookalike_paragraphs")).body.split("\n")
    document = snapshot_body("316197").split("\n")
    assert lines == document[:7] + list(LOOKALIKES) + document[7:]


def test_ordered_lists_keep_their_numbers_and_word_lists_read_the_same() -> None:
    lines = item("lists").body.split("\n")
    assert lines[2:5] == [
        "1. 坚持以习近平新时代中国特色社会主义思想为指导，深入学习贯彻党的二十大精神；",
        "2. 持续巩固主题教育成果，健全“三会一课”等学习制度；",
        "3. 推动党建引领基层治理走深走实。",
    ]
    assert lines[6:11] == [
        "4. 加强党员教育管理：",
        "每月开展一次主题党日活动；",
        "每季度讲一次专题党课。",
        "7. 深化“党建+网格”治理模式，完善三级组织架构。",
        "8. 做好困难群众帮扶工作。",
    ]
    assert lines[12:14] == ["a. 明确责任分工；", "b. 加强督促检查。"]
    assert "附件1：党员学习计划表" in lines  # list-style-type: none shows no number
    word = lines.index("积分管理（从Word粘贴的编号段落）：")
    listed = lines.index("积分管理（列表）：")
    assert lines[word + 1 : word + 3] == lines[listed + 1 : listed + 3]
    assert lines[word + 1 : word + 3] == ["1. 建立党员积分管理台账；", "2. 按月公示积分结果。"]
    assert lines[-2:] == ["联系人：王晓", "联系电话：0755-12345678"]


def test_a_table_is_one_line_per_row_with_its_cells_split_by_a_tab() -> None:
    lines = through_pipelines(item("tables")).body.split("\n")
    assert lines[2:8] == [
        "第三季度重点工作完成情况表",
        "序号\t工作项目\t完成情况\t备注",
        "1\t“三会一课”\t召开支部党员大会3次、支委会6次\t",
        "2\t网格走访\t走访入户1260余户 收集诉求87件\t满意率96%",
        "3\t民生实事\t完成老旧管网改造 增设“暖心驿站”\t",
        "合计\t3项重点工作全部完成\t—",
    ]
    # A one-cell table only lays the page out: its paragraphs stay paragraphs.
    assert lines[-2:] == ["附：本表由社区党支部办公室填报。", "填报日期：2023年10月9日"]


def test_numeric_character_references_of_a_gb2312_page_read_as_their_characters() -> None:
    raw = response("gb2312_ncr")[1]
    assert b"charset=gb2312" in raw
    raw.decode("gb2312")  # nothing outside GB2312: 喆 and others are references
    assert b"&#21894;" in raw
    assert b"&#x516C;&#x53F8;" in raw
    body = item("gb2312_ncr").body
    assert "王喆同志" in body
    assert "\ufffd" not in body


@pytest.mark.parametrize("name", ["boilerplate_only", "intro_only"])
def test_a_page_of_only_the_sites_lines_is_dropped_as_an_empty_body(name: str) -> None:
    extracted = item(name)
    assert extracted.body == ""
    assert extracted.problems == []
    with pytest.raises(DropItem, match=r"^missing_body: "):
        through_pipelines(extracted)


def test_the_deep_case_is_nested_a_thousand_levels() -> None:
    assert page_text("deep_nesting").count("<div>" * 1000) == 1


def test_regenerate_writes_the_output_a_case_is_checked_against(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(CASES / "tables", tmp_path / "tables")
    (tmp_path / "tables" / "output.json").unlink()
    monkeypatch.setattr(golden, "CASES", tmp_path)
    assert golden_cli.main(["regenerate", "tables"]) == 0
    written = (tmp_path / "tables" / "output.json").read_text(encoding="utf-8")
    assert written == (CASES / "tables" / "output.json").read_text(encoding="utf-8")
    with pytest.raises(SystemExit):
        golden_cli.main(["regenerate", "no_such_case"])
    assert "no such case: no_such_case" in capsys.readouterr().err
