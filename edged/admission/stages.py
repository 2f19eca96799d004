"""Emission stages (排放阶段): the many ways registries write them, and the national code.

Road vehicles have 国0..国6 (国6 split into 6a/6b); non-road machinery has its
own stages 国一..国四 and ``x`` for machinery built before any stage applied.
The national ledger table (HJ 1321-2023) writes a stage as one character:
``0``..``6`` for 国0..国6, ``d`` for electric or hydrogen (新能源) and ``x`` for
machinery without a stage, next to the readable 国N this module keeps.
"""

from __future__ import annotations

import re

# Emission stages in order; 国6 without a sub-stage ranks as 6a because a
# registry that does not say "6b" must not get the benefit of the doubt.
STAGES = ("国0", "国1", "国2", "国3", "国4", "国5", "国6a", "国6b")
_STAGE_RANK = {s: i for i, s in enumerate(STAGES)}

NO_STAGE = "x"
"""Machinery registered without an emission stage (无排放阶段): below every stage."""
MACHINE_STAGES = (NO_STAGE, "国1", "国2", "国3", "国4")
"""Non-road machinery stages (非道路移动机械 国一..国四), ``x`` first."""
NATIONAL_NEW_ENERGY = ("electric", "hydrogen")
"""Fuels the national table writes as ``d`` (新能源) instead of a stage."""

_NUMERALS = {
    "0": 0,
    "零": 0,
    "1": 1,
    "一": 1,
    "i": 1,
    "2": 2,
    "二": 2,
    "ii": 2,
    "3": 3,
    "三": 3,
    "iii": 3,
    "4": 4,
    "四": 4,
    "iv": 4,
    "5": 5,
    "五": 5,
    "v": 5,
    "6": 6,
    "六": 6,
    "vi": 6,
}
_STAGE_RE = re.compile(
    r"^(?:国|國|china|cn|stage|g)?\s*(?P<num>[0-6]|[零一二三四五六]|vi|iv|v|i{1,3})\s*(?P<sub>[ab])?$",
    re.IGNORECASE,
)
_NO_STAGE_WORDS = {"x", "无", "无排放阶段", "无阶段", "none", "no stage", "-"}


def _stage_parts(text: str) -> tuple[int, str]:
    """The stage number and sub-stage (``""``, ``a`` or ``b``) however it is written."""
    raw = text.strip().replace("Ⅴ", "V").replace("Ⅵ", "VI").replace("Ⅳ", "IV")
    m = _STAGE_RE.match(raw.replace("排放", "").replace("标准", "").strip())
    if not m:
        raise ValueError(f"unknown emission stage {text!r} (expected 国0..国6, 国6a/国6b)")
    num = _NUMERALS[m.group("num").lower()]
    sub = (m.group("sub") or "").lower()
    if sub and num != 6:
        raise ValueError(f"sub-stage {sub!r} only exists for 国6, found {text!r}")
    return num, sub


def parse_stage(text: str) -> str:
    """Canonical stage (``国5``, ``国6b``) from the many ways registries write it."""
    num, sub = _stage_parts(text)
    if num == 6:
        return "国6b" if sub == "b" else "国6a"
    return f"国{num}"


_STAGE_WRITTEN = {
    0: ("0", "零"),
    1: ("1", "一", "I"),
    2: ("2", "二", "II"),
    3: ("3", "三", "III"),
    4: ("4", "四", "IV", "Ⅳ"),
    5: ("5", "五", "V", "Ⅴ"),
    6: ("6", "六", "VI", "Ⅵ"),
}


def stage_query(text: str) -> tuple[str, ...]:
    """Every stored spelling of the stages a search for ``text`` means.

    国五, 国V, 5 and 国5 all find 国5 rows (the canonical form the registry
    gives a passage) and rows written 国五 or 国V by older versions or
    imports. Unlike :func:`parse_stage`, which ranks a bare 国6 as 6a for the
    policy's sake, a search for 国6 finds both sub-stages.
    """
    num, sub = _stage_parts(text)
    if num != 6:
        endings: tuple[str, ...] = ("",)
    elif sub == "b":
        endings = ("b", "B")
    else:  # 国6a, and 国6 written without a sub-stage, which ranks as 6a
        endings = ("a", "A", "") + (("b", "B") if not sub else ())
    return tuple(f"国{w}{e}" for w in _STAGE_WRITTEN[num] for e in endings)


def parse_machine_stage(text: str) -> str:
    """Canonical non-road stage: ``国1``..``国4``, or ``x`` for machinery without one.

    Road stages (国5, 国6) do not exist for machinery, and 国0 is written ``x``
    in the national table; both are refused so a wrong column is noticed.
    """
    if text.strip().lower() in _NO_STAGE_WORDS:
        return NO_STAGE
    try:
        stage = parse_stage(text.replace("非道路", "").replace("阶段", ""))
    except ValueError:
        raise ValueError(
            f"unknown machinery emission stage {text!r} (expected 国一..国四, or x for none)"
        ) from None
    if stage not in MACHINE_STAGES:
        raise ValueError(
            f"machinery emission stage {text!r}: non-road stages are 国一..国四; write x for"
            " machinery without a stage"
        )
    return stage


def stage_rank(stage: str) -> int:
    """Order of a canonical stage; higher is cleaner, ``x`` is below every stage."""
    return -1 if stage == NO_STAGE else _STAGE_RANK[stage]


def national_stage(stage: str | None, fuel: str | None = None) -> str | None:
    """The national table's one-character code: ``0``..``6``, ``d`` (electric or hydrogen),
    ``x`` (machinery without a stage); None where no stage is registered, so the row can
    say it is unknown rather than guess.

    >>> national_stage("国6b"), national_stage("国4"), national_stage(None, "electric")
    ('6', '4', 'd')
    """
    if fuel in NATIONAL_NEW_ENERGY:
        return "d"
    if stage is None:
        return None
    if stage == NO_STAGE:
        return NO_STAGE
    return stage.removeprefix("国")[:1]


def stage_en(stage: str) -> str:
    """English name for reasons shown in both languages (China V, no stage)."""
    if stage == NO_STAGE:
        return "no emission stage"
    names = ("0", "I", "II", "III", "IV", "V", "VIa", "VIb")
    return "China " + names[stage_rank(stage)]
