"""DESIGN 3 journeys and roles: the lookback window, the order, and which touch holds which role."""

from datetime import UTC, datetime, timedelta

from okr.attribution.core import (
    Opportunity,
    Role,
    Scope,
    Touch,
    account_journey,
    influenced_by_marketing,
    journey,
    roles,
    scope_end,
    sourced_by,
)

END = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def at(days: float) -> datetime:
    return END - timedelta(days=days)


def touch(
    tid: int,
    days: float,
    *,
    ext: str | None = None,
    channel: str = "email",
    team: str = "marketing",
    lead_days: float | None = None,
) -> Touch:
    lead = None if lead_days is None else at(lead_days)
    return Touch(tid, ext or f"T{tid:03d}", at(days), 100 + tid, channel, team, lead)


def opp(created_days: float, closed_days: float | None = None, status: str = "open") -> Opportunity:
    closed = None if closed_days is None else at(closed_days)
    return Opportunity(1, "O-1", 10_000, at(created_days), closed, status)


def ext_ids(steps: list[Touch]) -> list[str]:
    return [t.external_id for t in steps]


# -- journey -----------------------------------------------------------------------------------------


def test_pipeline_journey_is_the_touches_up_to_creation_in_time_order() -> None:
    touches = [touch(3, 1), touch(1, 30), touch(2, 10), touch(4, -2)]  # T004 is after creation
    assert ext_ids(journey(opp(0), touches, scope=Scope.PIPELINE)) == ["T001", "T002", "T003"]


def test_revenue_journey_runs_to_the_close() -> None:
    o = opp(20, 0, "won")
    touches = [touch(1, 30), touch(2, 10), touch(3, 0), touch(4, -0.001)]
    assert ext_ids(journey(o, touches, scope=Scope.REVENUE)) == ["T001", "T002", "T003"]
    assert ext_ids(journey(o, touches, scope=Scope.PIPELINE)) == ["T001"]


def test_revenue_journey_of_an_unclosed_opportunity_is_empty() -> None:
    assert journey(opp(5), [touch(1, 10)], scope=Scope.REVENUE) == []
    assert scope_end(opp(5), Scope.REVENUE) is None
    assert scope_end(opp(5), Scope.PIPELINE) == at(5)


def test_ties_in_time_go_by_external_id_whatever_the_input_order() -> None:
    touches = [touch(1, 3, ext="B"), touch(2, 3, ext="A"), touch(3, 5, ext="Z")]
    assert ext_ids(journey(opp(0), touches, scope=Scope.PIPELINE)) == ["Z", "A", "B"]
    assert ext_ids(journey(opp(0), list(reversed(touches)), scope=Scope.PIPELINE)) == ["Z", "A", "B"]


def test_external_ids_compare_as_plain_strings_like_the_kpi_queries() -> None:
    touches = [touch(1, 3, ext="b"), touch(2, 3, ext="B"), touch(3, 3, ext="10"), touch(4, 3, ext="9")]
    assert ext_ids(journey(opp(0), touches, scope=Scope.PIPELINE)) == ["10", "9", "B", "b"]


def test_lookback_window_is_closed_at_both_ends() -> None:
    edge = Touch(1, "EDGE", END - timedelta(days=365), 1, "email", "marketing")
    older = Touch(2, "OLDER", END - timedelta(days=365, microseconds=1), 1, "email", "marketing")
    at_end = Touch(3, "AT-END", END, 1, "email", "marketing")
    later = Touch(4, "LATER", END + timedelta(microseconds=1), 1, "email", "marketing")
    o = Opportunity(1, "O", 1, END, None, "open")
    assert ext_ids(journey(o, [older, edge, at_end, later], scope=Scope.PIPELINE)) == ["EDGE", "AT-END"]


def test_lookback_is_settable() -> None:
    touches = [touch(1, 31), touch(2, 30), touch(3, 1)]
    steps = journey(opp(0), touches, scope=Scope.PIPELINE, lookback_days=30)
    assert ext_ids(steps) == ["T002", "T003"]


def test_account_journey_without_opportunity_looks_back_from_its_latest_touch() -> None:
    touches = [touch(1, 400), touch(2, 300), touch(3, 100), touch(4, 0.5)]
    assert ext_ids(account_journey(touches)) == ["T002", "T003", "T004"]
    assert ext_ids(account_journey(touches, lookback_days=99)) == ["T004"]
    assert account_journey([]) == []


# -- roles -------------------------------------------------------------------------------------------


def test_roles_in_the_pipeline_scope() -> None:
    o = opp(0)
    steps = journey(
        o, [touch(1, 30), touch(2, 20, lead_days=25), touch(3, 10), touch(4, 1)], scope=Scope.PIPELINE
    )
    held = roles(steps, opportunity=o, scope=Scope.PIPELINE)
    # The earliest lead was created 25 days before: the last touch at or before then is T001.
    assert held == {Role.FIRST: 0, Role.LEAD_CREATION: 0, Role.OPPORTUNITY_CREATION: 3}


def test_lead_creation_is_the_last_touch_at_or_before_the_earliest_lead() -> None:
    o = opp(0)
    touches = [
        touch(1, 30, lead_days=30),  # the form fill that created lead 1: at, not before
        touch(2, 20, lead_days=15),
        touch(3, 14, lead_days=15),
        touch(4, 10, lead_days=30),
    ]
    steps = journey(o, touches, scope=Scope.PIPELINE)
    assert roles(steps, opportunity=o, scope=Scope.PIPELINE)[Role.LEAD_CREATION] == 0
    # Without lead 1 in the journey, the earliest lead is the one created 15 days before.
    later = [touch(2, 20, lead_days=15), touch(3, 15, lead_days=15), touch(5, 5, lead_days=15)]
    steps = journey(o, later, scope=Scope.PIPELINE)
    assert roles(steps, opportunity=o, scope=Scope.PIPELINE)[Role.LEAD_CREATION] == 1


def test_lead_creation_falls_back_to_the_first_touch() -> None:
    o = opp(0)
    # Every touch is after the lead's creation (or the lead is unknown): the first touch holds the role.
    for lead_days in (40, None):
        steps = journey(o, [touch(1, 30, lead_days=lead_days), touch(2, 20)], scope=Scope.PIPELINE)
        assert roles(steps, opportunity=o, scope=Scope.PIPELINE)[Role.LEAD_CREATION] == 0


def test_an_explicit_earliest_lead_creation_wins() -> None:
    o = opp(0)
    steps = journey(o, [touch(1, 30, lead_days=30), touch(2, 20), touch(3, 5)], scope=Scope.PIPELINE)
    held = roles(steps, opportunity=o, scope=Scope.PIPELINE, earliest_lead_created_at=at(10))
    assert held[Role.LEAD_CREATION] == 1


def test_roles_in_the_revenue_scope_of_a_won_deal() -> None:
    o = opp(15, 0, "won")
    steps = journey(o, [touch(1, 30, lead_days=30), touch(2, 20), touch(3, 5)], scope=Scope.REVENUE)
    held = roles(steps, opportunity=o, scope=Scope.REVENUE)
    assert held == {
        Role.FIRST: 0,
        Role.LEAD_CREATION: 0,
        Role.OPPORTUNITY_CREATION: 1,
        Role.CLOSED_WON: 2,
    }


def test_no_closed_won_role_in_the_pipeline_scope_or_on_a_lost_deal() -> None:
    touches = [touch(1, 30), touch(2, 20)]
    won = opp(15, 0, "won")
    assert Role.CLOSED_WON not in roles(
        journey(won, touches, scope=Scope.PIPELINE), opportunity=won, scope=Scope.PIPELINE
    )
    lost = opp(15, 0, "lost")
    assert Role.CLOSED_WON not in roles(
        journey(lost, touches, scope=Scope.REVENUE), opportunity=lost, scope=Scope.REVENUE
    )


def test_no_opportunity_creation_role_when_every_revenue_touch_is_after_creation() -> None:
    o = opp(40, 0, "won")
    steps = journey(o, [touch(1, 30), touch(2, 20)], scope=Scope.REVENUE)
    held = roles(steps, opportunity=o, scope=Scope.REVENUE)
    assert Role.OPPORTUNITY_CREATION not in held
    assert held[Role.CLOSED_WON] == 1


def test_one_touch_holds_every_role_it_can() -> None:
    o = opp(5, 0, "won")
    steps = journey(o, [touch(1, 10, lead_days=10)], scope=Scope.REVENUE)
    assert roles(steps, opportunity=o, scope=Scope.REVENUE) == dict.fromkeys(Role, 0)


def test_no_roles_without_touches() -> None:
    assert roles([], opportunity=opp(0), scope=Scope.PIPELINE) == {}


# -- sourced and influenced ---------------------------------------------------------------------------


def test_sourced_by_the_team_of_the_first_touch() -> None:
    steps = [touch(1, 30, team="sdr"), touch(2, 20, team="marketing"), touch(3, 10, team="sales")]
    assert sourced_by(steps) == "sdr"
    assert sourced_by(steps[1:]) == "marketing"
    assert sourced_by(steps[2:]) == "sales"
    assert sourced_by([touch(4, 1, team="partners")]) == "partners"
    assert sourced_by([]) == "unattributed"


def test_influenced_by_marketing_when_any_touch_is_marketing() -> None:
    assert influenced_by_marketing([touch(1, 30, team="sdr"), touch(2, 20, team="marketing")])
    assert not influenced_by_marketing([touch(1, 30, team="sdr"), touch(2, 20, team="sales")])
    assert not influenced_by_marketing([])
