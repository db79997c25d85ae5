"""How the lead queue says the business time left (okr.leads.services.format_left)."""

import datetime as dt

from okr.leads.services import format_left

H = dt.timedelta(hours=1)


def test_time_left_reads_in_hours_and_minutes_then_in_business_hours() -> None:
    assert format_left(H * 3 + dt.timedelta(minutes=20)) == "3 h 20 min left"
    assert format_left(-(H * 15 + dt.timedelta(minutes=40))) == "overdue by 15 h 40 min"
    assert format_left(dt.timedelta(seconds=30)) == "less than 1 min left"
    assert format_left(dt.timedelta(0)) == "due now"
    assert format_left(-(H * 2224 + dt.timedelta(minutes=36))) == "overdue by 2,224 business hours"
    assert format_left(H * 24) == "24 business hours left"
