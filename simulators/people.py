"""Who lives in the simulated homes: elders, visitors and relatives for POST /api/households."""

from __future__ import annotations

import random

COUNTY = "青山县"
TOWNSHIP = "白石镇"
VILLAGES = ("柳树村", "桃园村", "石桥村", "杨家湾村", "河口村", "新庄村")
_SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何林罗高"
_ELDER_NAMES = (
    "桂兰", "秀英", "玉珍", "德顺", "福生", "淑珍", "凤英", "建国", "秀兰", "玉兰",
    "桂英", "春花", "金山", "长林", "永福", "素芳", "翠花", "明德", "有才", "宝珍",
)  # fmt: skip
_YOUNGER_NAMES = (
    "伟",
    "芳",
    "强",
    "磊",
    "敏",
    "静",
    "军",
    "丽",
    "涛",
    "娟",
    "勇",
    "艳",
    "杰",
    "燕",
)
_RELATIONS = ("son", "daughter", "nephew", "niece", "grandson", "granddaughter")


def registration(seed: int, index: int, household_id: str) -> dict[str, object]:
    """The body of POST /api/households for the `index`-th simulated household (from 1)."""
    r = random.Random(f"{seed}/{household_id}/people")
    surname = r.choice(_SURNAMES)
    village_no = (index - 1) % len(VILLAGES)
    # A few visitors per village, each looking after several homes, as in the programme.
    visitor = random.Random(f"{seed}/visitor/{village_no}/{index % 2}")
    relatives = [
        {
            "name": surname + r.choice(_YOUNGER_NAMES),
            "phone": f"+86137{r.randrange(10**8):08d}",
            "relation": r.choice(_RELATIONS),
        }
        for _ in range(r.randint(1, 2))
    ]
    return {
        "id": household_id,
        "elder": {"name": surname + r.choice(_ELDER_NAMES), "phone": f"+86138{index:08d}"},
        "address": {
            "county": COUNTY,
            "township": TOWNSHIP,
            "village": VILLAGES[village_no],
            "detail": f"{r.randint(1, 8)}组{r.randint(1, 40)}号",
        },
        "visitors": [
            {
                "name": visitor.choice(_SURNAMES) + visitor.choice(_YOUNGER_NAMES),
                "phone": f"+86139{village_no:02d}{index % 2:06d}",
            }
        ],
        "relatives": relatives,
    }
