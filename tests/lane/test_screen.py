"""What the board shows and says, per reason code, from the lane's [display] (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from drivers.display.led_voice import LedVoiceConfig
from drivers.display.text import TextDisplayConfig
from edged.config.site import SiteConfig
from edged.lane.screen import idle_screen, passage_screen

NOW = datetime(2026, 1, 5, 8, 3, 9, tzinfo=timezone(timedelta(hours=8)))
SITE = SiteConfig(id="p1", name="演示钢铁", gate_id="east", gate_name="东门")
DENIED = {
    "plate": "冀A8K302",
    "emission_stage": "国4",
    "decision": "deny",
    "reason_code": "stage_below_minimum",
    "reason_zh": "排放阶段不达标（国4，需国5及以上），禁止入厂",
}


def test_idle_screen_shows_plant_gate_time_and_alert_level() -> None:
    screen = idle_screen(LedVoiceConfig(), SITE, "entry", "orange", NOW)
    assert screen.lines == ("演示钢铁", "东门", "2026-01-05 08:03", "橙色预警")
    assert screen.speech is None and not screen.refusal


def test_refusal_shows_stage_decision_and_the_configured_message_and_speaks() -> None:
    cfg = LedVoiceConfig(messages={"stage_below_minimum": "国四车辆禁止入厂"})
    screen = passage_screen(cfg, DENIED, SITE, "entry", "none", NOW)
    assert screen.lines == ("冀A8K302", "国4 禁止通行", "国四车辆禁止入厂", "08:03:09")
    assert screen.refusal and screen.speech == "冀A8K302,国四车辆禁止入厂"


def test_allowed_passage_is_shown_but_not_spoken_unless_asked() -> None:
    allowed = {**DENIED, "decision": "allow", "reason_code": "stage_ok", "reason_zh": "放行"}
    assert passage_screen(LedVoiceConfig(), allowed, SITE, "e", "none", NOW).speech is None
    cfg = LedVoiceConfig(speak="all", prompts={"stage_ok": "{plate},一路顺风"})
    assert passage_screen(cfg, allowed, SITE, "e", "none", NOW).speech == "冀A8K302,一路顺风"


def test_wav_prompts_try_the_configured_name_then_the_code_then_the_decision() -> None:
    cfg = TextDisplayConfig(speech="wav", prompts={"stage_below_minimum": "stage_low"})
    screen = passage_screen(cfg, DENIED, SITE, "e", "none", NOW)
    assert screen.prompts == ("stage_low", "stage_below_minimum", "deny")
    unread = passage_screen(cfg, {"decision": "hold", "reason_code": "no_id"}, SITE, "e", "", NOW)
    assert unread.lines[0] == "未识别车牌" and unread.prompts == ("no_id", "hold")
