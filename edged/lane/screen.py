"""What the driver is shown and told: the idle screen and a passage's screen, from the config.

Pure functions: a passage's ledger fields (or nothing, for the idle
screen), the site, the alert level in force and the time go in; the rows
of text, whether it is a refusal (shown in the refusal colour) and what is
spoken come out. Messages and prompts are chosen per reason code from the
lane's ``[display]``, so a plant words its refusals its own way without a
code change. The seeds ask that a refused driver is told why
(屏幕显示拦截原因, 语音播报); this is where "why" becomes words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

DECISION_ZH = {"allow": "允许通行", "deny": "禁止通行", "hold": "请等待确认"}
ALERT_ZH = {
    "none": "无重污染预警",
    "blue": "蓝色预警",
    "yellow": "黄色预警",
    "orange": "橙色预警",
    "red": "红色预警",
}
NO_PLATE = "未识别车牌"
DEFAULT_SPEECH = "{plate},{reason}"


@dataclass(frozen=True)
class Screen:
    """One screen for the board: rows, colour, and speech (board text or WAV names)."""

    lines: tuple[str, ...]
    kind: str = "idle"  # idle | passage
    refusal: bool = False
    speech: str | None = None  # for a board with its own voice
    prompts: tuple[str, ...] = ()  # WAV names to try in order (speech = "wav")


def _common(site: Any, lane: str, alert: str, now: datetime) -> dict[str, str]:
    return {
        "plant": site.name or site.id,
        "gate": site.gate_name or site.gate_id,
        "lane": lane,
        "alert": ALERT_ZH.get(alert, alert),
        "time": now.strftime("%Y-%m-%d %H:%M"),
        "plate": "",
        "stage": "",
        "decision": "",
        "reason": "",
    }


def idle_screen(cfg: Any, site: Any, lane: str, alert: str, now: datetime) -> Screen:
    """Plant, gate, time and the alert level in force, in the lane's idle template."""
    values = _common(site, lane, alert, now)
    return Screen(tuple(line.format(**values) for line in cfg.idle_lines))


def passage_screen(
    cfg: Any, record: dict[str, Any], site: Any, lane: str, alert: str, now: datetime
) -> Screen:
    """A passage: plate, emission stage, decision and reason, and what to say about it."""
    decision = str(record.get("decision") or "hold")
    code = str(record.get("reason_code") or "")
    values = _common(site, lane, alert, now)
    values.update(
        plate=record.get("plate") or NO_PLATE,
        stage=record.get("emission_stage") or "",
        decision=DECISION_ZH.get(decision, decision),
        reason=cfg.messages.get(code) or record.get("reason_zh") or "",
        time=now.strftime("%H:%M:%S"),
    )
    lines = tuple(" ".join(line.format(**values).split()) for line in cfg.passage_lines)
    refusal = decision != "allow"
    spoken = cfg.speech != "off" and (refusal or cfg.speak == "all")
    speech = prompts = None
    if spoken and cfg.speech == "controller":
        speech = cfg.prompts.get(code, DEFAULT_SPEECH).format(**values)
    elif spoken and cfg.speech == "wav":
        prompts = tuple(dict.fromkeys(n for n in (cfg.prompts.get(code), code, decision) if n))
    return Screen(lines, "passage", refusal, speech, prompts or ())
