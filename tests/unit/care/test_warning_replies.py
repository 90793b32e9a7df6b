"""Visitors' SMS replies to an emergency warning, read as the sender meant them."""

from __future__ import annotations

import pytest

from gateway.care.warning_replies import Unclear, WarningReply, parse_reply
from gateway.care.warning_texts import ElderLine, warning_messages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 安全", WarningReply("safe", (1,))),
        ("1 2 3 安全", WarningReply("safe", (1, 2, 3))),
        ("4转移", WarningReply("shelter", (4,))),
        ("5 已查看", WarningReply("checked", (5,))),
        ("6 查看", WarningReply("checked", (6,))),
        ("7 平安", WarningReply("safe", (7,))),
        ("8 安置", WarningReply("shelter", (8,))),
        ("全部安全", WarningReply("safe", None)),
        ("全部 已查看", WarningReply("checked", None)),
        ("都平安。", WarningReply("safe", None)),
        # Full-width digits, spaces and punctuation (a Chinese keyboard's) are forgiven.
        ("１，２　安全！", WarningReply("safe", (1, 2))),
        ("1、2、3安全", WarningReply("safe", (1, 2, 3))),
        ("2号3号 安全", WarningReply("safe", (2, 3))),
        ("1和2 转移", WarningReply("shelter", (1, 2))),
        ("安全 1 2", WarningReply("safe", (1, 2))),
        ("1 1 2 安全", WarningReply("safe", (1, 2))),
        ("1 safe", WarningReply("safe", (1,))),
        ("1,2 Checked", WarningReply("checked", (1, 2))),
        ("3 SHELTER", WarningReply("shelter", (3,))),
        ("all safe", WarningReply("safe", None)),
        # About a warning, but whom?
        ("安全", Unclear()),
        ("全部 1 安全", Unclear()),
        ("0 安全", Unclear()),
        ("12345 安全", Unclear()),
        ("1 安全了吗", Unclear()),
        # Not about a warning: the alerts' replies, and anything else.
        ("1", None),
        ("2", None),
        ("OK", None),
        ("收到", None),
        ("到达", None),
        ("什么事？", None),
        ("", None),
    ],
)
def test_a_reply_names_elders_and_a_status(
    text: str, expected: WarningReply | Unclear | None
) -> None:
    assert parse_reply(text) == expected


def test_a_long_list_of_elders_is_split_over_messages_each_with_the_reply_syntax_at_the_end() -> (
    None
):
    elders = [ElderLine(n, f"老人{n}", "某村", "一组" + "号" * 30) for n in range(1, 61)]
    messages = warning_messages(
        title="台风预警",
        body="今夜台风登陆",
        kind="typhoon",
        level="red",
        area="东村",
        time="12月1日 12:00",
        elders=elders,
        lang="zh",
    )
    assert len(messages) > 1
    bodies = [m.body for m in messages]
    assert all(len(b) <= 900 and b.startswith("【红色台风预警】台风预警") for b in bodies)
    text = "\n".join(bodies)
    assert all(f"\n{n}. 老人{n} " in text for n in range(1, 61))
    assert "全部安全" in bodies[-1]
    # Where only an approved template may be sent, each variable stays within 35 characters.
    assert all(len(v) <= 35 for m in messages for v in m.fields.values())
    assert messages[0].fields["elder"].startswith("1 老人1、2 老人2")
    assert messages[0].fields["elder"].endswith("位")


def test_an_english_speaking_visitor_gets_the_warning_in_english() -> None:
    (message,) = warning_messages(
        title="Typhoon Haikui",
        body="Landfall tonight.",
        kind="typhoon",
        level="orange",
        area="East village",
        time="01 Dec 12:00",
        elders=[ElderLine(3, "Zhang Guilan", "East village", "Group 3, No. 12")],
        lang="en",
    )
    assert message.body.startswith("[orange typhoon warning] Typhoon Haikui")
    assert "3. Zhang Guilan, East village Group 3, No. 12" in message.body
    assert '"1 safe"' in message.body
