"""The plan editor's form as typed: every value that cannot be read is an error beside its field (never a
server error), valid text becomes Decimals and minor units, blank rows are dropped, row buttons work."""

from decimal import Decimal
from typing import Any

import pytest
from litestar.datastructures import FormMultiDict

from okr.bonus.plan_schemas import (
    PlanCreate,
    PlanForm,
    check_plan_form,
    preview_curve,
    read_decimal,
    read_money,
    read_plan_form,
)
from okr.bonus.plans import DEFAULT_CURVE, PlanFields, TeamFields
from okr.lib.errors import ValidationFailed

D = Decimal


def submitted(**changes: Any) -> FormMultiDict:
    """The editor as a browser posts it, with `changes` (a list is a repeated field)."""
    values: dict[str, Any] = {
        "funding_rate": "0.03", "pipeline_rate": "", "pool_cap": "", "kr_cap": "1.5",
        "curve_score": ["0.5", "0.5", "1.0", "1.5"], "curve_multiplier": ["0", "0.5", "1.0", "2.0"],
        "team_name": ["sales", "marketing"], "team_share": ["0.6", "0.4"], "team_rule": ["by_credit", "equal"],
        "model": "w_shaped", "scope": "revenue", "cap_kind": "none", "cap_amount": "", "cap_multiple": "",
        "prorate": "1", "leftover_policy": "carry_forward", "clawback_days": "90", "note": "",
    }  # fmt: skip
    values.update(changes)
    pairs: list[tuple[str, Any]] = []
    for k, v in values.items():
        pairs += [(k, x) for x in v] if isinstance(v, list) else [(k, v)]
    return FormMultiDict(pairs)


def parse(**changes: Any) -> tuple[PlanForm, PlanFields | None]:
    form = read_plan_form(submitted(**changes))
    return form, check_plan_form(form, "USD")


def test_a_valid_form_becomes_decimals_and_minor_units() -> None:
    form, fields = parse(pool_cap="250,000.50", pipeline_rate="1.5 %", cap_kind="multiple", cap_multiple="2")
    assert form.errors == {} and fields is not None
    assert (fields.funding_rate, fields.pipeline_rate, fields.pool_cap) == (D("0.03"), D("0.015"), 25_000_050)
    assert fields.gate_curve == DEFAULT_CURVE
    assert fields.teams == (TeamFields("sales", D("0.6")), TeamFields("marketing", D("0.4"), "equal"))
    assert (fields.cap_amount, fields.cap_multiple, fields.prorate, fields.count_overlay) == (
        None,
        D(2),
        True,
        False,
    )
    assert fields.clawback_days == 90
    # The form filled from those fields reads back to the same fields.
    again = read_plan_form(submitted(**{k: v for k, v in _as_post(PlanForm.of(fields, "USD")).items()}))
    assert check_plan_form(again, "USD") == fields


def _as_post(form: PlanForm) -> dict[str, Any]:
    return {
        "funding_rate": form.funding_rate, "pipeline_rate": form.pipeline_rate, "pool_cap": form.pool_cap,
        "kr_cap": form.kr_cap, "curve_score": [r.score for r in form.curve],
        "curve_multiplier": [r.multiplier for r in form.curve], "team_name": [t.name for t in form.teams],
        "team_share": [t.share for t in form.teams], "team_rule": [t.rule for t in form.teams],
        "cap_kind": form.cap_kind, "cap_amount": form.cap_amount, "cap_multiple": form.cap_multiple,
        "prorate": "1" if form.prorate else "", "clawback_days": form.clawback_days,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"funding_rate": ""}, "funding_rate", "decimal number"),
        ({"funding_rate": "three"}, "funding_rate", "decimal number"),
        ({"funding_rate": "1e3"}, "funding_rate", "decimal number"),
        ({"funding_rate": "-0.03"}, "funding_rate", "cannot be negative"),
        ({"pipeline_rate": "NaN"}, "pipeline_rate", "no pipeline funding"),
        ({"pool_cap": "1.005"}, "pool_cap", "at most 2 decimals"),
        ({"pool_cap": "0"}, "pool_cap", "positive amount"),
        ({"kr_cap": "0"}, "kr_cap", "above 0"),
        ({"kr_cap": "x"}, "kr_cap", "such as 1.5"),
        ({"curve_multiplier": ["0", "0.5", "0.4", "2.0"]}, "gate_curve", "cannot go down"),
        ({"curve_score": ["1", "0.5", "1.0", "1.5"]}, "gate_curve", "Sort the points"),
        ({"curve_score": ["0.5", "", "1.0", "1.5"]}, "gate_curve[1]", "joint score and a multiplier"),
        ({"curve_score": [], "curve_multiplier": []}, "gate_curve", "at least one point"),
        ({"team_share": ["0.6", "0.5"]}, "teams", "add up to exactly 1 (they add up to 1.1)"),
        ({"team_share": ["0.6", "forty"]}, "teams[1].share", "decimal number"),
        ({"team_name": ["sales", "sales"]}, "teams[1].name", "listed twice"),
        ({"team_name": ["sales", ""]}, "teams[1].name", "Name the team"),
        ({"team_rule": ["by_credit", "by_luck"]}, "teams[1].rule", "by_credit, equal or by_target_bonus"),
        ({"cap_kind": "amount", "cap_amount": "lots"}, "person_cap", "amount in USD"),
        ({"cap_kind": "amount", "cap_amount": "-5"}, "person_cap", "positive amount"),
        ({"cap_kind": "multiple", "cap_multiple": "0"}, "person_cap", "positive multiple"),
        ({"cap_kind": "both"}, "person_cap", "Choose no cap"),
        ({"clawback_days": "ninety"}, "clawback_days", "whole number of days"),
        ({"clawback_days": "-3"}, "clawback_days", "0 or more"),
        ({"clawback_days": "1.5"}, "clawback_days", "whole number of days"),
        ({"leftover_policy": "keep"}, "leftover_policy", "carry_forward or return"),
        ({"model": "vibes"}, "model", "attribution model"),
        ({"scope": "everything"}, "scope", "revenue or pipeline"),
    ],
)  # fmt: skip
def test_each_bad_value_is_an_error_beside_its_field(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    form, fields = parse(**changes)
    assert fields is None
    assert field in form.errors and reason in form.errors[field], form.errors


def test_every_problem_shows_at_once_without_a_wrong_list_error() -> None:
    form, _ = parse(funding_rate="x", clawback_days="", team_share=["0.6", "?"])
    assert {"funding_rate", "clawback_days", "teams[1].share"} <= set(form.errors)
    # One share cannot be read: the shares' sum would be about the wrong list, so it is not claimed.
    assert "teams" not in form.errors


def test_blank_rows_are_dropped_and_the_row_numbers_match_what_is_shown_again() -> None:
    form, fields = parse(
        curve_score=["", "0.5", "1"], curve_multiplier=["", "0.5", "x"],
        team_name=["", "sales"], team_share=["", "1"], team_rule=["by_credit", "by_credit"],
    )  # fmt: skip
    assert fields is None
    assert [(r.score, r.multiplier) for r in form.curve] == [("0.5", "0.5"), ("1", "x")]
    assert list(form.errors) == ["gate_curve[1]"]
    assert [t.name for t in form.teams] == ["sales"]


def test_row_buttons_add_and_remove_rows() -> None:
    form = read_plan_form(submitted())
    assert form.apply("add_point") and len(form.curve) == 5 and form.curve[-1].score == ""
    assert form.apply("remove_point:0") and form.curve[0].multiplier == "0.5"
    assert form.apply("add_team") and len(form.teams) == 3
    assert form.apply("remove_team:0") and [t.name for t in form.teams] == ["marketing", ""]
    assert form.apply("remove_team:99")  # out of range: nothing removed
    assert len(form.teams) == 2
    assert not form.apply("drop_tables") and not form.apply("remove_point:x")


def test_the_curve_preview_says_why_it_cannot_draw() -> None:
    curve, problem = preview_curve(read_plan_form(submitted()))
    assert curve == list(DEFAULT_CURVE) and problem is None
    _, problem = preview_curve(read_plan_form(submitted(curve_multiplier=["0", "0.5", "0.4", "2"])))
    assert problem is not None and "cannot go down" in problem
    _, problem = preview_curve(read_plan_form(submitted(curve_score=["a", "0.5", "1", "1.5"])))
    assert problem is not None and "not numbers" in problem


def test_number_readers() -> None:
    assert read_decimal(" 1,250.5 ") == D("1250.5") and read_decimal("3 %") == D("0.03")
    assert read_decimal("") is None and read_decimal("inf") is None and read_decimal("1e2") is None
    assert read_money("250,000", "USD") == 25_000_000 and read_money("12", "JPY") == 12
    assert read_money("1.5", "JPY") is None and read_money("abc", "USD") is None


def test_the_api_body_converts_money_and_refuses_extra_decimals() -> None:
    body = PlanCreate(
        period="2026-Q4", funding_rate=D("0.03"), gate_curve=[(D(1), D(1))],
        teams=[], pool_cap=D("1000.25"), cap_amount=D("50"),
    )  # fmt: skip
    fields = body.fields("USD")
    assert (fields.pool_cap, fields.cap_amount, fields.clawback_days) == (100_025, 5_000, 90)
    with pytest.raises(ValidationFailed) as refused:
        PlanCreate(
            period="2026-Q4", funding_rate=D(0), gate_curve=[], teams=[], cap_amount=D("0.001")
        ).fields("USD")
    assert refused.value.errors == [
        {"field": "person_cap", "message": "An amount in USD has at most 2 decimals."}
    ]
