"""The demo generator writes a valid, deterministic, plausible organisation in the DESIGN 7 format."""

import csv
import datetime
import re
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from okr.demo.core import DEMO_LOGINS, DEMO_PASSWORD, SCALES, generate

TODAY = datetime.date(2026, 5, 14)
SPAN_START = datetime.date(2025, 4, 1)  # four quarters before 2026-Q2
UTC_MIDNIGHT_TODAY = datetime.datetime(2026, 5, 14, tzinfo=datetime.UTC)

# Copied from DESIGN 7 on purpose: the generator must not be the source of truth for its own format.
DESIGN_COLUMNS = {
    "fx_rates.csv": ["currency", "rate_to_base", "valid_from"],
    "people.csv": ["email", "name", "team", "role", "employee_id", "start_date", "end_date", "target_bonus"],
    "campaigns.csv": [
        "external_id",
        "name",
        "channel",
        "owner_email",
        "cost",
        "currency",
        "start_date",
        "end_date",
    ],
    "accounts.csv": ["external_id", "name", "segment", "industry"],
    "leads.csv": [
        "external_id",
        "account_external_id",
        "email",
        "owner_email",
        "created_at",
        "mql_at",
        "accepted_at",
        "rejected_at",
        "rejection_reason",
        "sql_at",
        "recycled_at",
    ],
    "touchpoints.csv": ["external_id", "lead_external_id", "campaign_external_id", "occurred_at", "kind"],
    "opportunities.csv": [
        "external_id",
        "account_external_id",
        "name",
        "owner_email",
        "amount",
        "currency",
        "created_at",
        "closed_at",
        "status",
        "stage",
        "probability",
        "forecast_category",
    ],
    "opportunity_splits.csv": ["opportunity_external_id", "person_email", "kind", "percent"],
}
AMOUNT = re.compile(r"^\d+\.\d{2}$")
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|\+00:00)$")
LEAD_TIMES = ("created_at", "mql_at", "accepted_at", "rejected_at", "sql_at", "recycled_at")
REASONS = {"no budget", "no timeline", "wrong persona", "bad data", "duplicate", "competitor", "other"}
CHANNELS = {"paid_search", "paid_social", "webinar", "event", "email", "content", "partner", "outbound"}
KINDS = {
    "form_fill",
    "event_attended",
    "ad_click",
    "email_click",
    "webinar_attended",
    "content_download",
    "meeting_booked",
}


def read(folder: Path, name: str) -> list[dict[str, str]]:
    """All rows of one generated file."""
    with (folder / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def ts(value: str) -> datetime.datetime:
    """Parse a generated timestamp (always UTC)."""
    assert TIMESTAMP.match(value), value
    return datetime.datetime.fromisoformat(value)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], float]:
    """The small organisation, generated once for the module, with its row counts and seconds taken."""
    folder = tmp_path_factory.mktemp("demo-small")
    started = time.perf_counter()
    counts = generate(folder, seed=7, scale="small", today=TODAY)
    return folder, counts, time.perf_counter() - started


@pytest.fixture(scope="module")
def data(small: tuple[Path, dict[str, int], float]) -> dict[str, list[dict[str, str]]]:
    """Every generated file of the small organisation, by file name."""
    folder, _, _ = small
    return {name: read(folder, name) for name in DESIGN_COLUMNS}


def test_writes_exactly_the_design_files_with_design_headers(
    small: tuple[Path, dict[str, int], float],
) -> None:
    folder, counts, _ = small
    assert sorted(path.name for path in folder.iterdir()) == sorted(DESIGN_COLUMNS)
    assert list(counts) == list(DESIGN_COLUMNS)
    for name, columns in DESIGN_COLUMNS.items():
        with (folder / name).open(newline="", encoding="utf-8") as handle:
            assert next(csv.reader(handle)) == columns, name


def test_counts_returned_match_rows_written(
    small: tuple[Path, dict[str, int], float], data: dict[str, list[dict[str, str]]]
) -> None:
    _, counts, _ = small
    assert counts == {name: len(rows) for name, rows in data.items()}


def test_small_generation_is_fast(small: tuple[Path, dict[str, int], float]) -> None:
    _, _, seconds = small
    assert seconds < 5


def test_same_seed_scale_and_day_give_identical_bytes(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(first, seed=11, scale="small", today=TODAY)
    generate(second, seed=11, scale="small", today=TODAY)
    generate(other, seed=12, scale="small", today=TODAY)
    for name in DESIGN_COLUMNS:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert (first / "touchpoints.csv").read_bytes() != (other / "touchpoints.csv").read_bytes()


def test_unknown_scale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown demo scale"):
        generate(tmp_path, scale="huge", today=TODAY)


def test_small_row_counts_are_within_bounds(small: tuple[Path, dict[str, int], float]) -> None:
    _, counts, _ = small
    scale = SCALES["small"]
    assert counts["people.csv"] == scale.people
    assert 30 <= counts["people.csv"] <= 40
    assert counts["campaigns.csv"] == 40
    assert counts["accounts.csv"] == 2_000
    assert 7_600 <= counts["leads.csv"] <= 8_400
    assert 28_500 <= counts["touchpoints.csv"] <= 31_500
    assert 1_400 <= counts["opportunities.csv"] <= 1_600


def test_enterprise_sizes_are_exact_where_promised() -> None:
    scale = SCALES["enterprise"]
    assert (scale.people, scale.campaigns, scale.accounts) == (200, 500, 100_000)
    assert (scale.leads, scale.touchpoints, scale.opportunities) == (300_000, 1_000_000, 50_000)


def test_demo_logins_are_people_with_their_roles(data: dict[str, list[dict[str, str]]]) -> None:
    people = {row["email"]: row for row in data["people.csv"]}
    assert DEMO_PASSWORD
    by_label = {label: (email, role) for label, email, role in DEMO_LOGINS}
    assert len(by_label) == len(DEMO_LOGINS)
    for _, email, role in DEMO_LOGINS:
        assert email.endswith("@demo.okr.example")
        assert people[email]["role"] == role
        assert people[email]["end_date"] == ""
    teams_roles = Counter((people[email]["team"], role) for _, email, role in DEMO_LOGINS)
    assert teams_roles[("sales", "leader")] >= 1
    assert teams_roles[("marketing", "leader")] >= 1
    assert teams_roles[("sales", "member")] >= 1
    assert teams_roles[("marketing", "member")] >= 1
    assert teams_roles[("sdr", "member")] >= 1
    assert sum(1 for _, _, role in DEMO_LOGINS if role == "finance") >= 2
    assert sum(1 for _, _, role in DEMO_LOGINS if role == "admin") >= 1
    assert people["vp.sales@demo.okr.example"]["team"] == "sales"
    assert people["vp.marketing@demo.okr.example"]["team"] == "marketing"


def test_people_are_well_formed(data: dict[str, list[dict[str, str]]]) -> None:
    people = data["people.csv"]
    assert len({row["email"] for row in people}) == len(people)
    assert len({row["employee_id"] for row in people}) == len(people)
    teams = Counter(row["team"] for row in people)
    assert 10 <= teams["sales"] <= 14 and 10 <= teams["marketing"] <= 14 and 5 <= teams["sdr"] <= 8
    assert teams["finance"] == 2 and teams["revops"] == 1
    for row in people:
        assert re.match(r"^E\d{5}$", row["employee_id"])
        assert row["role"] in {"member", "leader", "finance", "admin"}
        assert datetime.date.fromisoformat(row["start_date"]) <= TODAY
        if row["team"] in {"sales", "marketing", "sdr"}:
            assert AMOUNT.match(row["target_bonus"]) and Decimal(row["target_bonus"]) > 0
    joiners = [row for row in people if datetime.date.fromisoformat(row["start_date"]) > SPAN_START]
    leavers = [row for row in people if row["end_date"]]
    assert 1 <= len(joiners) <= 5
    assert len(leavers) == 1
    assert SPAN_START < datetime.date.fromisoformat(leavers[0]["end_date"]) < TODAY


def test_nothing_is_dated_after_today(data: dict[str, list[dict[str, str]]]) -> None:
    moments = [ts(row[column]) for row in data["leads.csv"] for column in LEAD_TIMES if row[column]]
    moments += [ts(row["occurred_at"]) for row in data["touchpoints.csv"]]
    moments += [
        ts(row[c]) for row in data["opportunities.csv"] for c in ("created_at", "closed_at") if row[c]
    ]
    assert max(moments) < UTC_MIDNIGHT_TODAY
    assert min(moments) >= datetime.datetime(2025, 4, 1, tzinfo=datetime.UTC)
    days = [row[c] for row in data["campaigns.csv"] for c in ("start_date", "end_date")]
    days += [row["valid_from"] for row in data["fx_rates.csv"]]
    days += [row[c] for row in data["people.csv"] for c in ("start_date", "end_date") if row[c]]
    assert max(datetime.date.fromisoformat(day) for day in days) <= TODAY


def test_leads_cover_the_last_four_quarters_and_this_one(data: dict[str, list[dict[str, str]]]) -> None:
    created = [ts(row["created_at"]).date() for row in data["leads.csv"]]
    assert min(created) < datetime.date(2025, 4, 8)
    assert max(created) > datetime.date(2026, 5, 10)
    per_quarter = Counter((day.year, (day.month - 1) // 3) for day in created)
    assert len(per_quarter) == 5
    assert min(per_quarter[(2025, q)] for q in (1, 2, 3)) > 1_000


def test_referential_integrity(data: dict[str, list[dict[str, str]]]) -> None:
    people = {row["email"]: row for row in data["people.csv"]}
    accounts = {row["external_id"] for row in data["accounts.csv"]}
    campaigns = {row["external_id"] for row in data["campaigns.csv"]}
    leads = {row["external_id"] for row in data["leads.csv"]}
    opportunities = {row["external_id"] for row in data["opportunities.csv"]}
    for rows, key in [
        (data["accounts.csv"], "external_id"),
        (data["campaigns.csv"], "external_id"),
        (data["leads.csv"], "external_id"),
        (data["touchpoints.csv"], "external_id"),
        (data["opportunities.csv"], "external_id"),
    ]:
        assert len({row[key] for row in rows}) == len(rows)
    assert all(row["account_external_id"] in accounts for row in data["leads.csv"])
    assert all(row["owner_email"] in people for row in data["leads.csv"])
    assert all(row["lead_external_id"] in leads for row in data["touchpoints.csv"])
    assert all(row["campaign_external_id"] in campaigns for row in data["touchpoints.csv"])
    assert all(row["account_external_id"] in accounts for row in data["opportunities.csv"])
    assert all(row["owner_email"] in people for row in data["opportunities.csv"])
    assert all(row["owner_email"] in people for row in data["campaigns.csv"] if row["owner_email"])
    assert all(row["opportunity_external_id"] in opportunities for row in data["opportunity_splits.csv"])
    assert all(row["person_email"] in people for row in data["opportunity_splits.csv"])


def test_external_ids_have_the_documented_shapes(data: dict[str, list[dict[str, str]]]) -> None:
    shapes = {
        "accounts.csv": r"^ACC-\d{6}$",
        "campaigns.csv": r"^CMP-\d{4}$",
        "leads.csv": r"^LEAD-\d{7}$",
        "touchpoints.csv": r"^TP-\d{8}$",
        "opportunities.csv": r"^OPP-\d{6}$",
    }
    for name, shape in shapes.items():
        assert all(re.match(shape, row["external_id"]) for row in data[name]), name


def test_owners_have_the_right_jobs(data: dict[str, list[dict[str, str]]]) -> None:
    people = {row["email"]: row for row in data["people.csv"]}
    for row in data["leads.csv"]:
        owner = people[row["owner_email"]]
        assert (owner["team"], owner["role"]) in {("sdr", "member"), ("sales", "member")}
    for row in data["opportunities.csv"]:
        assert (people[row["owner_email"]]["team"], people[row["owner_email"]]["role"]) == ("sales", "member")
    owners = Counter(
        people[row["owner_email"]]["team"] if row["owner_email"] else "" for row in data["campaigns.csv"]
    )
    assert owners["marketing"] > owners["sales"] > 0
    assert owners["sdr"] > 0
    assert 2 <= owners[""] <= 3
    for row in data["campaigns.csv"]:
        if row["channel"] == "outbound":
            assert people[row["owner_email"]]["team"] == "sdr"


def test_owners_were_employed_when_they_owned(data: dict[str, list[dict[str, str]]]) -> None:
    people = {row["email"]: row for row in data["people.csv"]}

    def employed(email: str, day: datetime.date) -> bool:
        person = people[email]
        ended = person["end_date"] and datetime.date.fromisoformat(person["end_date"]) < day
        return datetime.date.fromisoformat(person["start_date"]) <= day and not ended

    assert all(employed(row["owner_email"], ts(row["created_at"]).date()) for row in data["leads.csv"])
    assert all(
        employed(row["owner_email"], ts(row["created_at"]).date()) for row in data["opportunities.csv"]
    )


def test_funnel_rates_are_plausible(data: dict[str, list[dict[str, str]]]) -> None:
    leads = data["leads.csv"]
    mqls = [row for row in leads if row["mql_at"]]
    accepted = [row for row in mqls if row["accepted_at"]]
    rejected = [row for row in mqls if row["rejected_at"]]
    sqls = [row for row in leads if row["sql_at"]]
    assert 0.35 <= len(mqls) / len(leads) <= 0.55
    assert 0.65 <= len(accepted) / len(mqls) <= 0.85
    assert 0.08 <= len(rejected) / len(mqls) <= 0.22
    assert 0.3 <= len(sqls) / len(accepted) <= 0.5
    assert 0.8 <= sum(1 for row in leads if row["email"]) / len(leads) < 1
    for row in leads:
        created = ts(row["created_at"])
        assert not (row["accepted_at"] and row["rejected_at"])
        if row["mql_at"]:
            assert created <= ts(row["mql_at"]) <= created + datetime.timedelta(days=10)
        else:
            assert not (row["accepted_at"] or row["rejected_at"] or row["sql_at"])
        if row["accepted_at"]:
            assert ts(row["accepted_at"]) >= ts(row["mql_at"])
        if row["sql_at"]:
            assert row["accepted_at"] and ts(row["sql_at"]) >= ts(row["accepted_at"])
        assert bool(row["rejected_at"]) == bool(row["rejection_reason"])
        if row["rejection_reason"]:
            assert row["rejection_reason"] in REASONS
        if row["recycled_at"]:
            assert row["rejected_at"] and ts(row["recycled_at"]) > ts(row["rejected_at"])
    assert {row["rejection_reason"] for row in rejected} == REASONS
    assert sum(1 for row in leads if row["recycled_at"]) > 0


def test_speed_to_lead_is_mostly_inside_two_days_with_breaches(data: dict[str, list[dict[str, str]]]) -> None:
    handled = [row for row in data["leads.csv"] if row["accepted_at"] or row["rejected_at"]]
    hours = [
        (ts(row["accepted_at"] or row["rejected_at"]) - ts(row["mql_at"])).total_seconds() / 3600
        for row in handled
    ]
    within = sum(1 for value in hours if value <= 48) / len(hours)
    assert 0.75 <= within < 0.95


def test_reps_have_open_mqls_in_their_queue(data: dict[str, list[dict[str, str]]]) -> None:
    open_mqls = [
        row for row in data["leads.csv"] if row["mql_at"] and not (row["accepted_at"] or row["rejected_at"])
    ]
    recent = [
        row for row in open_mqls if ts(row["mql_at"]) >= UTC_MIDNIGHT_TODAY - datetime.timedelta(days=4)
    ]
    assert len(recent) >= 5
    owners = Counter(row["owner_email"] for row in open_mqls)
    assert owners["rep@demo.okr.example"] > 0
    assert owners["sdr@demo.okr.example"] > 0


def test_opportunities_are_consistent(data: dict[str, list[dict[str, str]]]) -> None:
    opportunities = data["opportunities.csv"]
    first_sql: dict[str, datetime.datetime] = {}
    lead_accounts: set[str] = set()
    for row in data["leads.csv"]:
        lead_accounts.add(row["account_external_id"])
        if row["sql_at"]:
            at = ts(row["sql_at"])
            account = row["account_external_id"]
            first_sql[account] = min(at, first_sql.get(account, at))
    stages = {"prospecting", "discovery", "proposal", "negotiation"}
    for row in opportunities:
        created = ts(row["created_at"])
        assert AMOUNT.match(row["amount"]) and 0 < Decimal(row["amount"]) <= 250_000
        if row["currency"] in {"", "USD"}:
            assert Decimal(row["amount"]) >= 5_000
        assert row["currency"] in {"", "USD", "EUR", "GBP"}
        assert 0 <= int(row["probability"]) <= 100
        if row["status"] == "open":
            assert row["closed_at"] == ""
            assert row["stage"] in stages
            assert row["forecast_category"] in {"pipeline", "best_case", "commit"}
        else:
            closed = ts(row["closed_at"])
            assert created < closed < UTC_MIDNIGHT_TODAY
            assert row["status"] in {"won", "lost"}
            if row["status"] == "won":
                assert (row["stage"], row["probability"], row["forecast_category"]) == (
                    "closed_won",
                    "100",
                    "closed",
                )
                assert 20 <= (closed - created).days <= 120
            else:
                assert (row["stage"], row["probability"], row["forecast_category"]) == (
                    "closed_lost",
                    "0",
                    "",
                )
        account = row["account_external_id"]
        if account in lead_accounts:
            assert created >= first_sql[account]
    status = Counter(row["status"] for row in opportunities)
    assert 0.22 <= status["won"] / (status["won"] + status["lost"]) <= 0.34
    assert status["open"] > 0
    old = [
        row
        for row in opportunities
        if ts(row["created_at"]) < datetime.datetime(2025, 10, 1, tzinfo=datetime.UTC)
    ]
    assert sum(1 for row in old if row["status"] != "open") / len(old) > 0.85
    usd = sorted(Decimal(row["amount"]) for row in opportunities if row["currency"] in {"", "USD"})
    assert 15_000 <= usd[len(usd) // 2] <= 35_000
    foreign = sum(1 for row in opportunities if row["currency"] in {"EUR", "GBP"}) / len(opportunities)
    assert 0.04 <= foreign <= 0.12
    assert 0 < sum(1 for row in opportunities if row["currency"] == "") < len(opportunities)


def test_splits_are_valid(data: dict[str, list[dict[str, str]]]) -> None:
    people = {row["email"]: row for row in data["people.csv"]}
    owners = {row["external_id"]: row["owner_email"] for row in data["opportunities.csv"]}
    revenue: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
    overlay: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
    for row in data["opportunity_splits.csv"]:
        assert row["kind"] in {"revenue", "overlay"}
        assert 0 < Decimal(row["percent"]) <= 100
        (revenue if row["kind"] == "revenue" else overlay)[row["opportunity_external_id"]].append(row)
    keys = [
        (r["opportunity_external_id"], r["person_email"], r["kind"]) for r in data["opportunity_splits.csv"]
    ]
    assert len(set(keys)) == len(keys)
    for opportunity, rows in revenue.items():
        assert sum(Decimal(row["percent"]) for row in rows) == 100
        assert len(rows) == 2
        assert owners[opportunity] in {row["person_email"] for row in rows}
        assert all(people[row["person_email"]]["team"] == "sales" for row in rows)
    for rows in overlay.values():
        assert all(people[row["person_email"]]["team"] == "sdr" for row in rows)
    total = len(owners)
    assert 0.22 <= len(revenue) / total <= 0.38
    assert 0.27 <= len(overlay) / total <= 0.43


def test_touchpoints_follow_campaigns_and_make_attribution_interesting(
    data: dict[str, list[dict[str, str]]],
) -> None:
    campaigns = {row["external_id"]: row for row in data["campaigns.csv"]}
    accounts_of_leads = {row["external_id"]: row["account_external_id"] for row in data["leads.csv"]}
    assert {row["channel"] for row in data["campaigns.csv"]} == CHANNELS
    touches_by_account: defaultdict[str, list[tuple[datetime.datetime, str, str]]] = defaultdict(list)
    inside = 0
    for row in data["touchpoints.csv"]:
        assert row["kind"] in KINDS
        campaign = campaigns[row["campaign_external_id"]]
        at = ts(row["occurred_at"])
        start, end = (datetime.date.fromisoformat(campaign[c]) for c in ("start_date", "end_date"))
        inside += start <= at.date() <= end
        touches_by_account[accounts_of_leads[row["lead_external_id"]]].append(
            (at, row["external_id"], campaign["channel"])
        )
    assert inside / len(data["touchpoints.csv"]) > 0.97
    assert any(len({at for at, _, _ in touches}) < len(touches) for touches in touches_by_account.values())

    first: Counter[str] = Counter()
    last: Counter[str] = Counter()
    unattributed = 0
    for row in data["opportunities.csv"]:
        created = ts(row["created_at"])
        journey = sorted(t for t in touches_by_account.get(row["account_external_id"], []) if t[0] <= created)
        if not journey:
            unattributed += 1
            continue
        first[journey[0][2]] += 1
        last[journey[-1][2]] += 1
    assert 0 < unattributed < len(data["opportunities.csv"]) / 4
    assert first.most_common(1)[0][0] != last.most_common(1)[0][0]
    with_opportunity = {row["account_external_id"] for row in data["opportunities.csv"]}
    assert any(account not in with_opportunity for account in touches_by_account)


def test_fx_rates_and_campaign_currencies(data: dict[str, list[dict[str, str]]]) -> None:
    rates = data["fx_rates.csv"]
    assert {row["currency"] for row in rates} >= {"EUR", "GBP"}
    assert all(re.match(r"^\d+\.\d{4}$", row["rate_to_base"]) for row in rates)
    assert min(datetime.date.fromisoformat(row["valid_from"]) for row in rates) <= SPAN_START
    assert len({row["valid_from"] for row in rates}) >= 3
    currencies = Counter(row["currency"] for row in data["campaigns.csv"])
    assert currencies["EUR"] + currencies["GBP"] > 0
    assert all(AMOUNT.match(row["cost"]) for row in data["campaigns.csv"])


@pytest.mark.parametrize("today", [datetime.date(2026, 4, 1), datetime.date(2025, 12, 31)])
def test_quarter_edges_stay_before_today(tmp_path: Path, today: datetime.date) -> None:
    generate(tmp_path, scale="small", today=today)
    midnight = datetime.datetime.combine(today, datetime.time(), tzinfo=datetime.UTC)
    opportunities = read(tmp_path, "opportunities.csv")
    latest = max(
        [ts(row["occurred_at"]) for row in read(tmp_path, "touchpoints.csv")]
        + [ts(row[c]) for row in read(tmp_path, "leads.csv") for c in LEAD_TIMES if row[c]]
        + [ts(row[c]) for row in opportunities for c in ("created_at", "closed_at") if row[c]]
    )
    assert latest < midnight
    campaign_days = [row["end_date"] for row in read(tmp_path, "campaigns.csv")]
    assert max(datetime.date.fromisoformat(day) for day in campaign_days) <= today
    assert all(row["closed_at"] == "" for row in opportunities if row["status"] == "open")
