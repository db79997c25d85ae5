"""Which SLA rule an MQL falls under (okr.sla.policy), without a database."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from okr.settings import load_settings
from okr.sla import core
from okr.sla.policy import Rule, RuleBook, default_rule

NY = ZoneInfo("America/New_York")
SETTINGS = load_settings(database_url="sqlite+aiosqlite:///:memory:", org_timezone="America/New_York")


def test_the_defaults_are_24_business_hours_on_weekdays() -> None:
    rule = default_rule(SETTINGS, "2026-Q4")
    assert rule.describe() == "24 business hours (Mon-Fri 09:00-17:00, America/New_York)"
    assert rule.acceptance_target == Decimal("0.9") and not rule.stored
    assert rule.due(dt.datetime(2026, 11, 20, 16, tzinfo=NY)) == dt.datetime(2026, 11, 25, 16, tzinfo=NY)


def test_an_mql_follows_the_rule_of_the_period_it_arrived_in() -> None:
    q4 = Rule("2026-Q4", 8, core.BusinessCalendar(tz=NY, weekdays=(0, 2, 4)), Decimal("0.8"), 400, True)
    book = RuleBook(SETTINGS, {"2026-Q4": q4})
    # 2026-09-30 23:30 in New York is Q3 (defaults), although it is already October in UTC.
    late_q3 = dt.datetime(2026, 9, 30, 23, 30, tzinfo=NY)
    assert book.for_mql(late_q3).period == "2026-Q3" and not book.for_mql(late_q3).stored
    first_q4 = dt.datetime(2026, 10, 1, 0, 30, tzinfo=NY)  # a Thursday: Q4's days are Mon, Wed, Fri
    assert book.for_mql(first_q4) is q4
    assert book.due(first_q4) == dt.datetime(2026, 10, 2, 17, tzinfo=NY)
    assert q4.describe() == "8 business hours (Mon, Wed, Fri 09:00-17:00, America/New_York)"
