"""Deterministic demo data: a realistic organisation written as the import files of DESIGN 7.

Everything comes from one seeded `random.Random`, and rows are written account by account, so the same
seed, scale and day give byte-identical files and memory stays flat however many rows are written.
Times are whole seconds counted from the first day of the covered span (00:00 UTC). Every timestamp falls
before `today` 00:00 UTC and no date lies after `today`, so the data is never in the future of whoever
loads it that day, whatever the organisation's time zone.
"""

import bisect
import csv
import datetime
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from okr.imports.core import ENTITIES, SPECS

# Public on purpose: it only ever guards generated demo people.
DEMO_PASSWORD: str = "okr-demo-2026"  # noqa: S105
DEMO_DOMAIN = "demo.okr.example"

# (role label, email, app role): the people a visitor can log in as with DEMO_PASSWORD.
DEMO_LOGINS: list[tuple[str, str, str]] = [
    ("leader (CRO)", f"cro@{DEMO_DOMAIN}", "leader"),
    ("leader (VP sales)", f"vp.sales@{DEMO_DOMAIN}", "leader"),
    ("leader (VP marketing)", f"vp.marketing@{DEMO_DOMAIN}", "leader"),
    ("rep (account executive)", f"rep@{DEMO_DOMAIN}", "member"),
    ("marketer", f"marketer@{DEMO_DOMAIN}", "member"),
    ("SDR", f"sdr@{DEMO_DOMAIN}", "member"),
    ("finance (submits bonus runs)", f"finance@{DEMO_DOMAIN}", "finance"),
    ("finance (approves bonus runs)", f"finance.approver@{DEMO_DOMAIN}", "finance"),
    ("admin (RevOps)", f"admin@{DEMO_DOMAIN}", "admin"),
]

# The DESIGN 7 files and their columns, in load order: the importer's spec is the one source.
FILE_COLUMNS: dict[str, tuple[str, ...]] = {
    SPECS[entity].file_name: SPECS[entity].column_names for entity in ENTITIES
}

REJECTION_REASONS: tuple[str, ...] = (
    "no budget",
    "no timeline",
    "wrong persona",
    "bad data",
    "duplicate",
    "competitor",
    "other",
)
CHANNELS: tuple[str, ...] = (
    "paid_search",
    "paid_social",
    "webinar",
    "event",
    "email",
    "content",
    "partner",
    "outbound",
)


@dataclass(frozen=True, slots=True)
class Scale:
    """Size of a demo organisation: people, campaigns and accounts exact, the rest targets within ~3 %."""

    reps: int
    marketers: int
    sdrs: int
    finance: int
    admins: int
    joiners: int
    leavers: int
    campaigns: int
    unowned_campaigns: int
    accounts: int
    leads: int
    touchpoints: int
    opportunities: int

    @property
    def people(self) -> int:
        """Head count: the CRO, VP sales, VP marketing and SDR manager plus every pool."""
        return 4 + self.reps + self.marketers + self.sdrs + self.finance + self.admins


SCALES: dict[str, Scale] = {
    "small": Scale(
        reps=10,
        marketers=11,
        sdrs=6,
        finance=2,
        admins=1,
        joiners=3,
        leavers=1,
        campaigns=40,
        unowned_campaigns=3,
        accounts=2_000,
        leads=8_000,
        touchpoints=30_000,
        opportunities=1_500,
    ),
    "enterprise": Scale(
        reps=95,
        marketers=45,
        sdrs=49,
        finance=4,
        admins=3,
        joiners=12,
        leavers=4,
        campaigns=500,
        unowned_campaigns=6,
        accounts=100_000,
        leads=300_000,
        touchpoints=1_000_000,
        opportunities=50_000,
    ),
}

_DAY = 86_400
_HOUR = 3_600

# Funnel rates (DESIGN 5 planner inputs should come out near these).
_MQL_RATE = 0.45
_ACCEPT_RATE = 0.77
_REJECT_RATE = 0.16
_SQL_RATE = 0.42
_RECYCLE_RATE = 0.2
_OPEN_RECENT_DAYS = 4
# Measured share of leads that reach SQL before `today` with the rates above; it sizes the number of
# follow-on opportunities so the opportunity count lands on the scale's target.
_SQL_PER_LEAD = 0.14
_NO_LEAD_ACCOUNTS = 0.1
_OPP_AFTER_SQL = 0.85
_SALES_SOURCED = 0.5
_SEGMENTS: tuple[tuple[str, float, float], ...] = (
    # (segment, share of accounts, lead volume relative to the average account)
    ("smb", 0.55, 0.7),
    ("mid_market", 0.30, 1.2),
    ("enterprise", 0.15, 1.7),
)
_TOUCHLESS_LEADS = 0.08
_TIE_SHARE = 0.02

_FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas", "Mia",
    "Mateo", "Amelia", "Ethan", "Harper", "Benjamin", "Evelyn", "Henry", "Abigail", "Sebastian", "Emily",
    "Jack", "Ella", "Aiden", "Chloe", "Samuel", "Nora", "David", "Zoe", "Omar", "Aisha", "Ravi", "Ananya",
    "Kenji", "Yuki", "Mei", "Wei", "Fatima", "Tomas", "Lena", "Jonas", "Clara", "Felix", "Ines", "Diego",
    "Lucia", "Marco", "Giulia", "Pierre", "Camille", "Sean", "Niamh", "Kwame", "Adaeze", "Tariq", "Leila",
    "Erik", "Astrid", "Hugo", "Elise", "Rafael", "Beatriz", "Arjun", "Priyanka",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Nguyen", "Patel", "Shah", "Kumar", "Singh", "Tanaka", "Sato", "Wang", "Zhang", "Kowalski", "Novak",
    "Muller", "Schmidt", "Fischer", "Rossi", "Bianchi", "Dubois", "Laurent", "Murphy", "O'Brien", "Byrne",
    "Mensah", "Okoye", "Haddad", "Nasser", "Larsen", "Nilsson", "Silva", "Santos", "Costa", "Ferreira",
    "Cohen", "Levi",
)  # fmt: skip
_BRAND_HEADS = (
    "North", "South", "Blue", "Silver", "Bright", "Clear", "Iron", "Red", "Green", "Summit", "River",
    "Stone", "Oak", "Pine", "Maple", "Cedar", "Harbor", "Lake", "Star", "Sun", "Golden", "Swift", "True",
    "High", "Deep", "Wild", "Cobalt", "Amber", "Granite", "Falcon", "Eagle", "Hawk", "Fox", "Wolf", "Bear",
    "Crown", "Pioneer", "Atlas", "Nova", "Apex",
)  # fmt: skip
_BRAND_TAILS = (
    "wind", "field", "bridge", "gate", "stack", "line", "path", "point", "ridge", "wave", "works", "craft",
    "light", "forge", "peak", "view", "way", "port", "shore", "brook", "wood", "vale", "crest", "mark",
    "side", "haven", "spring", "rock", "sight", "lane", "bay", "dale", "hill", "ford", "wick", "ton",
    "by", "mont", "stead", "well",
)  # fmt: skip
_DESCRIPTORS: tuple[tuple[str, str], ...] = (
    ("Analytics", "Software"),
    ("Software", "Software"),
    ("Systems", "Software"),
    ("Capital", "Financial services"),
    ("Financial", "Financial services"),
    ("Health", "Healthcare"),
    ("Medical", "Healthcare"),
    ("Manufacturing", "Manufacturing"),
    ("Robotics", "Manufacturing"),
    ("Logistics", "Logistics"),
    ("Freight", "Logistics"),
    ("Retail", "Retail"),
    ("Foods", "Retail"),
    ("Learning", "Education"),
)
_LEGAL = ("Inc", "Ltd", "GmbH", "LLC", "Group", "SA")
_TOPICS = (
    "Pipeline forecasting",
    "Revenue operations",
    "Sales and marketing alignment",
    "Lead scoring",
    "Multi-touch attribution",
    "Quarterly planning",
    "Customer onboarding",
    "CRM data quality",
    "Account-based marketing",
    "Sales compensation",
    "Win-loss analysis",
    "Partner ecosystems",
)
_AUDIENCES = (
    "RevOps leaders",
    "Sales leaders",
    "Marketing leaders",
    "Finance teams",
    "Founders",
    "IT buyers",
)
_EVENTS = ("RevOps Summit", "Pipeline Live", "Growth Roadshow", "Customer Day", "SaaS Connect")
_PARTNERS = ("Crestline Consulting", "Brightpath Partners", "Meridian Integrators", "Atlas Resellers")
_CITIES = {
    "USD": ("New York", "Chicago", "Austin", "San Francisco", "Boston", "Toronto"),
    "EUR": ("Berlin", "Paris", "Amsterdam", "Madrid"),
    "GBP": ("London", "Manchester"),
}
_CHANNEL_SHARES: tuple[tuple[str, int], ...] = (
    ("paid_search", 14),
    ("paid_social", 13),
    ("webinar", 18),
    ("event", 10),
    ("email", 17),
    ("content", 12),
    ("partner", 7),
    ("outbound", 9),
)
# Always-on channels run back-to-back campaigns over the whole span; webinars and events are dated.
_ALWAYS_ON = frozenset({"paid_search", "paid_social", "email", "content", "partner", "outbound"})
# Between dated campaigns an on-demand recording stands in for a webinar, an invitation email for an event.
_FALLBACK = {"webinar": "content", "event": "email"}
_COST_RANGES = {
    "paid_search": (8_000, 60_000),
    "paid_social": (5_000, 45_000),
    "webinar": (1_500, 12_000),
    "event": (10_000, 120_000),
    "email": (500, 5_000),
    "content": (2_000, 20_000),
    "partner": (3_000, 30_000),
    "outbound": (1_000, 8_000),
}
# Amount medians and spread per segment (USD major units); deals are clamped to 5,000..250,000.
_DEAL_SIZES = {"smb": (13_000, 0.55), "mid_market": (30_000, 0.55), "enterprise": (70_000, 0.6)}
_CYCLE_DAYS = {"smb": (20, 55), "mid_market": (30, 90), "enterprise": (60, 120)}
_WIN_RATE = {"smb": 0.31, "mid_market": 0.28, "enterprise": 0.23}
_OPEN_STAGE_WEIGHTS: tuple[tuple[float, str, str, tuple[tuple[str, float], ...]], ...] = (
    # (progress below which, stage, probability, forecast categories with weights)
    (0.25, "prospecting", "10", (("pipeline", 1),)),
    (0.5, "discovery", "25", (("pipeline", 4), ("best_case", 1))),
    (0.8, "proposal", "50", (("best_case", 3), ("pipeline", 1), ("commit", 1))),
    (math.inf, "negotiation", "75", (("commit", 3), ("best_case", 1))),
)
_EXTRA_OPP_NAMES = ("Expansion", "Add-on seats", "Renewal uplift", "Professional services", "New team")


class _Weighted:
    """A weighted choice that costs one random draw and a bisect."""

    __slots__ = ("_cum", "_items", "_total")

    def __init__(self, pairs: Sequence[tuple[str, float]]) -> None:
        self._items = [item for item, _ in pairs]
        self._cum = _accumulate([weight for _, weight in pairs])
        self._total = self._cum[-1]

    def pick(self, rng: random.Random) -> str:
        return self._items[bisect.bisect_right(self._cum, rng.random() * self._total)]


def _accumulate(weights: Sequence[float]) -> list[float]:
    total = 0.0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return out


# Channel mixes per place in a journey: awareness channels open journeys, nurture and meetings close them,
# so first touch, last touch and the milestone models disagree the way they do on real data.
_PRE_MIX = _Weighted(
    [
        ("paid_search", 30),
        ("paid_social", 25),
        ("content", 20),
        ("partner", 8),
        ("email", 7),
        ("webinar", 5),
        ("event", 5),
    ]
)
_CREATE_MIX = _Weighted(
    [
        ("content", 28),
        ("webinar", 22),
        ("paid_search", 18),
        ("paid_social", 10),
        ("event", 10),
        ("partner", 7),
        ("email", 5),
    ]
)
_POST_MIX = _Weighted(
    [("email", 40), ("webinar", 20), ("content", 15), ("event", 10), ("paid_social", 10), ("outbound", 5)]
)
_SQL_MIX = _Weighted([("outbound", 55), ("event", 20), ("email", 15), ("webinar", 10)])
_OPP_MIX = _Weighted([("event", 35), ("webinar", 25), ("email", 25), ("partner", 15)])
_KIND_MIX = {
    "paid_search": _Weighted([("ad_click", 7), ("form_fill", 3)]),
    "paid_social": _Weighted([("ad_click", 3), ("form_fill", 1)]),
    "webinar": _Weighted([("webinar_attended", 3), ("form_fill", 2)]),
    "event": _Weighted([("event_attended", 4), ("meeting_booked", 1)]),
    "email": _Weighted([("email_click", 9), ("form_fill", 1)]),
    "content": _Weighted([("content_download", 4), ("form_fill", 1)]),
    "partner": _Weighted([("form_fill", 3), ("meeting_booked", 1), ("event_attended", 1)]),
    "outbound": _Weighted([("email_click", 1), ("meeting_booked", 1)]),
}
_CREATE_KIND = {
    "content": _Weighted([("content_download", 1)]),
    "outbound": _Weighted([("meeting_booked", 1), ("email_click", 1)]),
}
_FORM_FILL = _Weighted([("form_fill", 1)])
_ATTENDED = frozenset({"webinar_attended", "event_attended"})
_FOLLOW_UP = {"webinar": "form_fill", "event": "meeting_booked"}
_REASON_MIX = _Weighted(list(zip(REJECTION_REASONS, (22, 20, 18, 12, 10, 8, 10), strict=True)))
_SEGMENT_MIX = _Weighted([(name, share) for name, share, _ in _SEGMENTS])
_SEGMENT_VOLUME = {name: volume for name, _, volume in _SEGMENTS}
_OPEN_STAGES = tuple(
    (below, stage, probability, _Weighted(weights))
    for below, stage, probability, weights in _OPEN_STAGE_WEIGHTS
)


class _RowWriter(Protocol):
    def writerow(self, row: Sequence[str], /) -> Any: ...


@dataclass(slots=True)
class _Person:
    email: str
    name: str
    team: str
    role: str
    start_day: int
    end_day: int | None = None
    target_bonus: int | None = None
    employee_id: str = ""

    def active(self, first: int, last: int) -> bool:
        return self.start_day <= first and (self.end_day is None or last <= self.end_day)


@dataclass(frozen=True, slots=True)
class _Campaign:
    ext_id: str
    channel: str
    start_day: int
    end_day: int
    # When attendees of a webinar or event are checked in; -1 for other channels.
    attend_time: int
    attend_days: int


@dataclass(slots=True)
class _Lead:
    ext_id: str
    email: str
    owner: str
    created: int
    outbound: bool
    mql: int | None = None
    accepted: int | None = None
    rejected: int | None = None
    reason: str = ""
    sql: int | None = None
    recycled: int | None = None


@dataclass(slots=True)
class _Opp:
    created: int
    end: int
    name: str
    sourcing_sdr: str | None
    closed: int | None = None
    status: str = "open"
    stage: str = ""
    probability: str = ""
    forecast: str = ""
    owner: str = ""
    amount: int = 0
    currency: str = ""
    splits: list[tuple[str, str, str]] = field(default_factory=list)


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method: fine for the small means used here."""
    limit = math.exp(-lam)
    count = 0
    product = rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _apportion(total: int, shares: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """Split a count over weighted names by largest remainder (ties to the larger share, then order)."""
    weight = sum(share for _, share in shares)
    floors = [(name, total * share // weight) for name, share in shares]
    left = total - sum(count for _, count in floors)
    order = sorted(range(len(shares)), key=lambda i: (-(total * shares[i][1] % weight), -shares[i][1], i))
    bonus = set(order[:left])
    return [(name, count + (1 if i in bonus else 0)) for i, (name, count) in enumerate(floors)]


def _quarter_start(day: datetime.date) -> datetime.date:
    return datetime.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _add_months(day: datetime.date, months: int) -> datetime.date:
    index = day.year * 12 + day.month - 1 + months
    return datetime.date(index // 12, index % 12 + 1, day.day)


def _quarter_label(day: datetime.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _money(major: int) -> str:
    return f"{major}.00"


class _Clock:
    """Formats seconds and days counted from the span start."""

    def __init__(self, start: datetime.date, days: int) -> None:
        self.start = start
        self._days = [(start + datetime.timedelta(days=i)).isoformat() for i in range(days + 1)]

    def ts(self, seconds: int | None) -> str:
        if seconds is None:
            return ""
        day, rest = divmod(seconds, _DAY)
        hour, rest = divmod(rest, _HOUR)
        minute, second = divmod(rest, 60)
        return f"{self._days[day]}T{hour:02d}:{minute:02d}:{second:02d}Z"

    def date(self, day: int) -> str:
        if 0 <= day < len(self._days):
            return self._days[day]
        return (self.start + datetime.timedelta(days=day)).isoformat()


class _Generator:
    """Holds the small lookups (people, campaigns, rates) and writes the rows."""

    def __init__(self, out_dir: Path, seed: int, scale: Scale, today: datetime.date) -> None:
        self.rng = random.Random(seed)
        self.scale = scale
        self.out_dir = out_dir
        self.span_start = _add_months(_quarter_start(today), -12)
        self.days = (today - self.span_start).days
        self.horizon = self.days * _DAY
        self.clock = _Clock(self.span_start, self.days)
        self.counts: dict[str, int] = dict.fromkeys(FILE_COLUMNS, 0)
        self.people: list[_Person] = []
        self.reps: list[_Person] = []
        self.marketers: list[_Person] = []
        self.sdrs: list[_Person] = []
        self.sdr_emails: frozenset[str] = frozenset()
        self.rates: list[tuple[int, int, int]] = []  # (from day, EUR, GBP) in 1/10,000 USD
        self.campaigns: list[_Campaign] = []
        self.active: dict[str, list[tuple[_Campaign, ...]]] = {}
        self.nearest: dict[str, list[_Campaign | None]] = {}
        self.leads_per_account = 0.0
        self.touches_lambda = 0.0
        self.extra_opps = 0.0
        self.lead_w: _RowWriter
        self.touch_w: _RowWriter
        self.opp_w: _RowWriter
        self.split_w: _RowWriter
        self.lead_seq = 0
        self.touch_seq = 0
        self.opp_seq = 0

    # -- writing -------------------------------------------------------------------------------------

    def _write_all(self, name: str, rows: list[list[str]]) -> None:
        with (self.out_dir / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(FILE_COLUMNS[name])
            writer.writerows(rows)
        self.counts[name] = len(rows)

    # -- fx rates ------------------------------------------------------------------------------------

    def build_rates(self) -> None:
        rng = self.rng
        eur, gbp = 10_850, 12_700
        rows: list[list[str]] = []
        for quarter in range(5):
            start = _add_months(self.span_start, 3 * quarter)
            if quarter:
                eur += rng.randint(-180, 180)
                gbp += rng.randint(-220, 220)
            self.rates.append(((start - self.span_start).days, eur, gbp))
            rows.append(["EUR", f"{eur // 10_000}.{eur % 10_000:04d}", start.isoformat()])
            rows.append(["GBP", f"{gbp // 10_000}.{gbp % 10_000:04d}", start.isoformat()])
        self._write_all("fx_rates.csv", rows)

    def _to_currency(self, usd: int, currency: str, day: int, step: int) -> int:
        """Convert a USD figure to `currency` at the rate in force on `day`, rounded to `step`."""
        if currency == "USD":
            return usd
        _, eur, gbp = self.rates[bisect.bisect_right([r[0] for r in self.rates], day) - 1]
        rate = eur if currency == "EUR" else gbp
        return max(step, (usd * 10_000 // rate + step // 2) // step * step)

    # -- people --------------------------------------------------------------------------------------

    def build_people(self) -> None:
        rng = self.rng
        scale = self.scale
        taken = {email for _, email, _ in DEMO_LOGINS}

        def fresh(team: str, role: str) -> _Person:
            while True:
                first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
                local = f"{first}.{last}".lower().replace("'", "")
                email = f"{local}@{DEMO_DOMAIN}"
                if email not in taken:
                    taken.add(email)
                    return _Person(email, f"{first} {last}", team, role, 0)

        def demo(email_local: str, name: str, team: str, role: str) -> _Person:
            return _Person(f"{email_local}@{DEMO_DOMAIN}", name, team, role, 0)

        cro = demo("cro", "Alexandra Reid", "sales", "leader")
        vp_sales = demo("vp.sales", "Daniel Okafor", "sales", "leader")
        vp_marketing = demo("vp.marketing", "Priya Raman", "marketing", "leader")
        sdr_manager = fresh("sdr", "leader")
        demo_rep = demo("rep", "Jordan Mitchell", "sales", "member")
        demo_marketer = demo("marketer", "Sofia Alvarez", "marketing", "member")
        demo_sdr = demo("sdr", "Liam Chen", "sdr", "member")
        self.reps = [demo_rep] + [fresh("sales", "member") for _ in range(scale.reps - 1)]
        self.marketers = [demo_marketer] + [fresh("marketing", "member") for _ in range(scale.marketers - 1)]
        self.sdrs = [demo_sdr] + [fresh("sdr", "member") for _ in range(scale.sdrs - 1)]
        self.sdr_emails = frozenset(person.email for person in self.sdrs)
        finance = [
            demo("finance", "Hannah Weber", "finance", "finance"),
            demo("finance.approver", "Marcus Bennett", "finance", "finance"),
        ] + [fresh("finance", "finance") for _ in range(scale.finance - 2)]
        admins = [demo("admin", "Grace Kim", "revops", "admin")] + [
            fresh("revops", "admin") for _ in range(scale.admins - 1)
        ]
        leaders = [cro, vp_sales, vp_marketing, sdr_manager]
        self.people = leaders + self.reps + self.marketers + self.sdrs + finance + admins

        for person in self.people:
            person.start_day = -rng.randrange(60, 6 * 365)
        # Mid-period joiners and leavers exercise proration; demo logins stay full-period people.
        movers = self.reps[1:] + self.marketers[1:] + self.sdrs[1:]
        joiners = rng.sample(movers, scale.joiners)
        for person in joiners:
            person.start_day = rng.randrange(45, self.days - 60)
        leavers = rng.sample([p for p in self.reps[1:] if p not in joiners], scale.leavers)
        for person in leavers:
            person.end_day = rng.randrange(self.days // 3, self.days - 30)

        bonus = {"sales": (18, 30), "marketing": (12, 20), "sdr": (8, 14)}
        for person in self.people:
            if person.team in bonus:
                low, high = bonus[person.team]
                person.target_bonus = rng.randint(low, high) * 1_000
        cro.target_bonus, vp_sales.target_bonus, vp_marketing.target_bonus = 60_000, 45_000, 40_000
        sdr_manager.target_bonus = 25_000

        rows = []
        for number, person in enumerate(self.people, start=10_001):
            person.employee_id = f"E{number}"
            rows.append(
                [
                    person.email,
                    person.name,
                    person.team,
                    person.role,
                    person.employee_id,
                    self.clock.date(person.start_day),
                    "" if person.end_day is None else self.clock.date(person.end_day),
                    "" if person.target_bonus is None else _money(person.target_bonus),
                ]
            )
        self._write_all("people.csv", rows)

    def _pick_active(
        self, pool: list[_Person], first: int, last: int, preferred: _Person | None = None
    ) -> _Person:
        """Someone from `pool` employed on both days: the preferred person when they are."""
        if preferred is not None and preferred.active(first, last):
            return preferred
        for _ in range(64):
            person = pool[self.rng.randrange(len(pool))]
            if person.active(first, last):
                return person
        # Rare: nobody random fits both days (a leaver and a joiner); settle for the first day only.
        for person in pool:
            if person.active(first, first):
                return person
        return pool[0]

    # -- campaigns -----------------------------------------------------------------------------------

    def build_campaigns(self) -> None:
        rng = self.rng
        days = self.days
        drafts: list[tuple[int, int, str, int, int, int, int]] = []  # start, rank, channel, end, attend...
        for rank, (channel, count) in enumerate(_apportion(self.scale.campaigns, _CHANNEL_SHARES)):
            if channel in _ALWAYS_ON:
                lanes = max(1, math.ceil(count / 5))
                for lane in range(lanes):
                    size = count // lanes + (1 if lane < count % lanes else 0)
                    # Lanes start and stop on different days, as separately planned campaigns do.
                    shift = rng.uniform(-0.25, 0.25) if size > 1 else 0.0
                    edges = [0] + [round((i + shift) * days / size) for i in range(1, size)] + [days]
                    for i in range(size):
                        start = 0 if i == 0 else max(0, edges[i] - rng.randrange(0, 10))
                        end = days if i == size - 1 else min(days, edges[i + 1] - 1 + rng.randrange(0, 10))
                        drafts.append((start, rank, channel, end, -1, 0, len(drafts)))
            elif channel == "webinar":
                for live in self._spread(count, 14, days - 1):
                    drafts.append(
                        (max(0, live - 28), rank, channel, live, live * _DAY + 16 * _HOUR, 1, len(drafts))
                    )
            else:
                for first in self._spread(count, 30, days - 2):
                    length = min(rng.randint(1, 3), days - first)
                    promotion = max(0, first - 42)
                    attend = first * _DAY + 14 * _HOUR
                    drafts.append((promotion, rank, channel, first + length - 1, attend, length, len(drafts)))
        drafts.sort()
        # Sales runs some partner programmes and field events itself: those campaigns count as sales'.
        field_campaigns = [i for i, draft in enumerate(drafts) if draft[2] in ("partner", "event")]
        by_sales = set(rng.sample(field_campaigns, max(2, round(0.3 * len(field_campaigns)))))

        rows: list[list[str]] = []
        names: dict[str, int] = {}
        for number, (start, _, channel, end, attend_time, attend_days, _) in enumerate(drafts, start=1):
            ext_id = f"CMP-{number:04d}"
            owner = self._campaign_owner(channel, start, end, by_sales=number - 1 in by_sales)
            currency = "USD"
            if rng.random() < 0.15:
                currency = "EUR" if rng.random() < 0.6 else "GBP"
            low, high = _COST_RANGES[channel]
            usd = rng.randrange(low, high) // 10 * 10
            cost = self._to_currency(usd, currency, start, 10)
            name = self._campaign_name(channel, currency, start, end)
            seen = names.get(name, 0) + 1
            names[name] = seen
            if seen > 1:
                name = f"{name} #{seen}"
            shown_currency = "" if currency == "USD" and rng.random() < 0.3 else currency
            rows.append(
                [
                    ext_id,
                    name,
                    channel,
                    owner,
                    _money(cost),
                    shown_currency,
                    self.clock.date(start),
                    self.clock.date(end),
                ]
            )
            self.campaigns.append(
                _Campaign(ext_id, channel, start, min(end, days - 1), attend_time, attend_days)
            )

        # A few campaigns lost their owner (someone left, nobody reassigned); they count as marketing.
        candidates = [
            i for i, row in enumerate(rows) if row[2] in ("paid_search", "content", "email", "webinar")
        ]
        for index in sorted(rng.sample(candidates, self.scale.unowned_campaigns)):
            rows[index][3] = ""
        self._write_all("campaigns.csv", rows)
        self._index_campaigns()

    def _spread(self, count: int, low: int, high: int) -> list[int]:
        """Days for `count` dated campaigns, spread evenly over [low, high] with some jitter."""
        step = (high - low) / count
        return [min(high, low + int((i + 0.2 + 0.6 * self.rng.random()) * step)) for i in range(count)]

    def _campaign_owner(self, channel: str, start: int, end: int, *, by_sales: bool) -> str:
        if channel == "outbound":
            pool = self.sdrs
        elif by_sales:
            pool = self.reps
        else:
            pool = self.marketers
        return self._pick_active(pool, start, min(end, self.days - 1)).email

    def _campaign_name(self, channel: str, currency: str, start: int, end: int) -> str:
        rng = self.rng
        region = "NA" if currency == "USD" else "EMEA"
        topic = rng.choice(_TOPICS)
        audience = rng.choice(_AUDIENCES)
        quarter = _quarter_label(self.span_start + datetime.timedelta(days=(start + end) // 2))
        if channel == "paid_search":
            return f"Google Ads {region} - {topic} - {audience} ({quarter})"
        if channel == "paid_social":
            return f"LinkedIn Ads {region} - {topic} - {audience} ({quarter})"
        if channel == "webinar":
            return f"Webinar: {topic} ({self.clock.date(end)})"
        if channel == "event":
            return f"{rng.choice(_EVENTS)} {rng.choice(_CITIES[currency])} {self.clock.date(end)[:7]}"
        if channel == "email":
            return f"Nurture {region} - {topic} - {audience} ({quarter})"
        if channel == "content":
            return f"eBook: The {topic.lower()} playbook ({quarter})"
        if channel == "partner":
            return f"Partner referrals {region} - {rng.choice(_PARTNERS)} ({quarter})"
        return f"Outbound {region} - {audience} - {topic} sequence ({quarter})"

    def _index_campaigns(self) -> None:
        for channel in CHANNELS:
            own = [c for c in self.campaigns if c.channel == channel]
            self.active[channel] = [
                tuple(c for c in own if c.start_day <= day <= c.end_day) for day in range(self.days)
            ]
            nearest: list[_Campaign | None] = []
            for day in range(self.days):
                best: _Campaign | None = None
                best_gap = 15  # farther than two weeks is no longer "that campaign"
                for campaign in own:
                    gap = max(campaign.start_day - day, day - campaign.end_day, 0)
                    if gap < best_gap:
                        best, best_gap = campaign, gap
                nearest.append(best)
            self.nearest[channel] = nearest

    def _campaign_at(self, channel: str, t: int) -> tuple[_Campaign, int]:
        """A campaign of `channel` running at `t`, moving `t` a little into a dated one if needed."""
        day = t // _DAY
        running = self.active[channel][day]
        if running:
            return running[self.rng.randrange(len(running))], t
        near = self.nearest[channel][day]
        if near is None:
            running = self.active[_FALLBACK[channel]][day]
            return running[self.rng.randrange(len(running))], t
        moved_day = near.start_day if day < near.start_day else near.end_day
        return near, moved_day * _DAY + t % _DAY

    # -- accounts and everything under them ---------------------------------------------------------

    def build_accounts(self) -> None:
        scale = self.scale
        rng = self.rng
        space = len(_BRAND_HEADS) * len(_BRAND_TAILS) * len(_DESCRIPTORS) * len(_LEGAL)
        if scale.accounts > space:
            raise ValueError(f"at most {space} demo accounts")
        # A multiplier coprime with the name space walks it without repeats: unique names, no set kept.
        stride = rng.randrange(space // 3, space // 2)
        while math.gcd(stride, space) != 1:
            stride += 1
        offset = rng.randrange(space)

        self.leads_per_account = scale.leads / scale.accounts / (1 - _NO_LEAD_ACCOUNTS)
        self.touches_lambda = scale.touchpoints / scale.leads / (1 - _TOUCHLESS_LEADS) - 1
        self.extra_opps = self._extra_opp_mean()

        names = [
            "accounts.csv",
            "leads.csv",
            "touchpoints.csv",
            "opportunities.csv",
            "opportunity_splits.csv",
        ]
        handles = [(self.out_dir / name).open("w", newline="", encoding="utf-8") for name in names]
        try:
            writers = [csv.writer(handle, lineterminator="\n") for handle in handles]
            for name, writer in zip(names, writers, strict=True):
                writer.writerow(FILE_COLUMNS[name])
            account_w, self.lead_w, self.touch_w, self.opp_w, self.split_w = writers
            for index in range(scale.accounts):
                code = (index * stride + offset) % space
                code, legal = divmod(code, len(_LEGAL))
                code, descriptor = divmod(code, len(_DESCRIPTORS))
                head, tail = divmod(code, len(_BRAND_TAILS))
                word, industry = _DESCRIPTORS[descriptor]
                brand = f"{_BRAND_HEADS[head]}{_BRAND_TAILS[tail]}"
                name = f"{brand} {word} {_LEGAL[legal]}"
                domain = f"{brand}-{word}-{_LEGAL[legal]}.example".lower()
                segment = _SEGMENT_MIX.pick(rng)
                ext_id = f"ACC-{index + 1:06d}"
                account_w.writerow([ext_id, name, segment, industry])
                self._account(ext_id, name, domain, segment)
        finally:
            for handle in handles:
                handle.close()
        self.counts["accounts.csv"] = scale.accounts

    def _extra_opp_mean(self) -> float:
        """Mean number of follow-on deals per deal-bearing account that makes the count hit the target."""
        with_sql = 0.0
        for _, share, volume in _SEGMENTS:
            others = max(0.0, self.leads_per_account * volume - 1)
            none = (1 - _SQL_PER_LEAD) * math.exp(-others * _SQL_PER_LEAD)
            with_sql += share * (1 - none)
        first_deals = (1 - _NO_LEAD_ACCOUNTS) * with_sql * _OPP_AFTER_SQL + _NO_LEAD_ACCOUNTS * _SALES_SOURCED
        return max(0.0, self.scale.opportunities / self.scale.accounts / first_deals - 1)

    def _account(self, ext_id: str, name: str, domain: str, segment: str) -> None:
        rng = self.rng
        ae = self.reps[rng.randrange(len(self.reps))]
        sdr = self.sdrs[rng.randrange(len(self.sdrs))]
        if rng.random() < _NO_LEAD_ACCOUNTS:
            n_leads = 0
        else:
            n_leads = 1 + _poisson(rng, max(0.0, self.leads_per_account * _SEGMENT_VOLUME[segment] - 1))
        leads = [self._lead(domain, ae, sdr) for _ in range(n_leads)]
        opps = self._opportunities(name, segment, leads, ae, sdr)

        clock = self.clock
        for lead in leads:
            self.lead_w.writerow(
                [
                    lead.ext_id,
                    ext_id,
                    lead.email,
                    lead.owner,
                    clock.ts(lead.created),
                    clock.ts(lead.mql),
                    clock.ts(lead.accepted),
                    clock.ts(lead.rejected),
                    lead.reason,
                    clock.ts(lead.sql),
                    clock.ts(lead.recycled),
                ]
            )
        self.counts["leads.csv"] += len(leads)
        for lead in leads:
            for t, campaign_id, kind in self._touches(lead, opps):
                self.touch_seq += 1
                self.touch_w.writerow(
                    [f"TP-{self.touch_seq:08d}", lead.ext_id, campaign_id, clock.ts(t), kind]
                )
        self.counts["touchpoints.csv"] = self.touch_seq
        for opp in opps:
            self.opp_seq += 1
            opp_id = f"OPP-{self.opp_seq:06d}"
            self.opp_w.writerow(
                [
                    opp_id,
                    ext_id,
                    opp.name,
                    opp.owner,
                    _money(opp.amount),
                    opp.currency,
                    clock.ts(opp.created),
                    clock.ts(opp.closed),
                    opp.status,
                    opp.stage,
                    opp.probability,
                    opp.forecast,
                ]
            )
            for email, kind, percent in opp.splits:
                self.split_w.writerow([opp_id, email, kind, percent])
            self.counts["opportunity_splits.csv"] += len(opp.splits)
        self.counts["opportunities.csv"] = self.opp_seq

    def _lead(self, domain: str, ae: _Person, sdr: _Person) -> _Lead:
        rng = self.rng
        horizon = self.horizon
        self.lead_seq += 1
        # Slightly more leads lately: a growing business.
        day = min(self.days - 1, int(self.days * rng.random() ** 0.9))
        created = day * _DAY + rng.randrange(8 * _HOUR, 23 * _HOUR)
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        email = "" if rng.random() < 0.05 else f"{first}.{last}@{domain}".lower().replace("'", "")
        outbound = rng.random() < 0.12
        lead = _Lead(f"LEAD-{self.lead_seq:07d}", email, "", created, outbound)

        if rng.random() < _MQL_RATE:
            mql = created + int(rng.random() ** 2 * 10 * _DAY)
            if mql < horizon:
                lead.mql = mql
                recent = mql >= horizon - _OPEN_RECENT_DAYS * _DAY
                if not (recent and rng.random() < 0.5):
                    self._disposition(lead, mql)
        # The owner must be employed from creation until their last action on the lead (today if it waits).
        if lead.rejected is not None:
            last_day = lead.rejected // _DAY
        elif lead.accepted is not None:
            last_day = (lead.sql or lead.accepted) // _DAY
        elif lead.mql is not None:
            last_day = self.days - 1
        else:
            last_day = created // _DAY
        if outbound or rng.random() < 0.7:
            lead.owner = self._pick_active(self.sdrs, created // _DAY, last_day, sdr).email
        else:
            lead.owner = self._pick_active(self.reps, created // _DAY, last_day, ae).email
        return lead

    def _disposition(self, lead: _Lead, mql: int) -> None:
        rng = self.rng
        horizon = self.horizon
        # Mostly inside two days; the slow tail makes SLA breaches.
        if rng.random() < 0.85:
            delay = 300 + min(int(rng.expovariate(1 / (8 * _HOUR))), 47 * _HOUR)
        else:
            delay = 48 * _HOUR + rng.randrange(0, 8 * _DAY)
        at = mql + delay
        if at >= horizon:
            return
        choice = rng.random()
        if choice < _ACCEPT_RATE:
            lead.accepted = at
            if rng.random() < _SQL_RATE:
                sql = at + _HOUR + int(rng.random() ** 1.5 * 21 * _DAY)
                if sql < horizon:
                    lead.sql = sql
        elif choice < _ACCEPT_RATE + _REJECT_RATE:
            lead.rejected = at
            lead.reason = _REASON_MIX.pick(rng)
            if rng.random() < _RECYCLE_RATE:
                recycled = at + rng.randrange(7 * _DAY, 60 * _DAY)
                if recycled < horizon:
                    lead.recycled = recycled

    def _opportunities(
        self, name: str, segment: str, leads: list[_Lead], ae: _Person, sdr: _Person
    ) -> list[_Opp]:
        rng = self.rng
        horizon = self.horizon
        sql_leads = sorted((lead for lead in leads if lead.sql is not None), key=lambda lead: lead.sql or 0)
        opps: list[_Opp] = []
        if sql_leads:
            if rng.random() >= _OPP_AFTER_SQL:
                return opps
            source = sql_leads[0]
            first_sql = source.sql or 0
            created = first_sql + rng.randrange(0, min(14 * _DAY, horizon - first_sql))
            sourcing_sdr = source.owner if source.owner in self.sdr_emails else sdr.email
            overlay_share = 0.4
        elif not leads and rng.random() < _SALES_SOURCED:
            created = rng.randrange(0, horizon)
            sourcing_sdr = None
            overlay_share = 0.0
        else:
            return opps
        opps.append(_Opp(created, horizon, f"{name} - New business", sourcing_sdr))
        for _ in range(_poisson(rng, self.extra_opps)):
            later = rng.randrange(created, horizon)
            opps.append(_Opp(later, horizon, f"{name} - {rng.choice(_EXTRA_OPP_NAMES)}", sourcing_sdr))
        opps.sort(key=lambda opp: opp.created)
        for opp in opps:
            self._settle(opp, segment, ae, overlay_share)
        return opps

    def _settle(self, opp: _Opp, segment: str, ae: _Person, overlay_share: float) -> None:
        """Give a deal its amount, outcome, stage, owner and splits."""
        rng = self.rng
        low, high = _CYCLE_DAYS[segment]
        cycle = rng.randrange(low * _DAY, high * _DAY)
        expected_close = opp.created + cycle
        if expected_close < self.horizon and rng.random() >= 0.07:
            if rng.random() < _WIN_RATE[segment]:
                opp.status, opp.stage, opp.probability, opp.forecast = "won", "closed_won", "100", "closed"
                opp.closed = expected_close
            else:
                opp.status, opp.stage, opp.probability = "lost", "closed_lost", "0"
                opp.closed = opp.created + int(cycle * (0.3 + 0.7 * rng.random()))
            opp.end = opp.closed
        else:
            # Deals past their expected close that are still open have slipped: late stages.
            progress = 0.8 if expected_close < self.horizon else (self.horizon - opp.created) / cycle
            for below, stage, probability, categories in _OPEN_STAGES:
                if progress < below:
                    opp.stage, opp.probability = stage, probability
                    opp.forecast = categories.pick(rng)
                    break

        median, sigma = _DEAL_SIZES[segment]
        usd = int(min(250_000, max(5_000, rng.lognormvariate(math.log(median), sigma)))) // 100 * 100
        currency = "USD"
        roll = rng.random()
        if roll < 0.05:
            currency = "EUR"
        elif roll < 0.08:
            currency = "GBP"
        opp.amount = self._to_currency(usd, currency, opp.created // _DAY, 100)
        opp.currency = "" if currency == "USD" and rng.random() < 0.25 else currency

        first_day, last_day = opp.created // _DAY, (opp.end - 1) // _DAY
        owner = self._pick_active(self.reps, first_day, last_day, ae)
        opp.owner = owner.email
        if rng.random() < 0.33:
            partner = self._pick_active(self.reps, first_day, first_day)
            if partner is not owner:
                major, minor = rng.choice(((60, 40), (50, 50), (70, 30), (75, 25)))
                opp.splits.append((owner.email, "revenue", str(major)))
                opp.splits.append((partner.email, "revenue", str(minor)))
        if opp.sourcing_sdr is not None and rng.random() < overlay_share:
            opp.splits.append((opp.sourcing_sdr, "overlay", rng.choice(("10", "10", "10", "5", "15"))))

    def _touches(self, lead: _Lead, opps: list[_Opp]) -> list[tuple[int, str, str]]:
        rng = self.rng
        if rng.random() < _TOUCHLESS_LEADS:
            return []
        remaining = 1 + _poisson(rng, self.touches_lambda)
        touches: list[tuple[int, str, str]] = []
        attended: set[str] = set()
        created = lead.created
        if lead.outbound:
            touches.append(self._touch("outbound", created, attended, creating=True))
            remaining -= 1
        elif rng.random() < 0.7:
            touches.append(self._touch(_CREATE_MIX.pick(rng), created, attended, creating=True))
            remaining -= 1
        if lead.sql is not None and remaining > 0:
            t = lead.sql - rng.randrange(0, min(2 * _DAY, lead.sql - created))
            touches.append(self._touch(_SQL_MIX.pick(rng), t, attended, creating=False))
            remaining -= 1
        live = [opp for opp in opps if opp.end > created]
        nurture_end = min(self.horizon, max(created + 45 * _DAY, (lead.sql or 0) + 14 * _DAY))
        for _ in range(remaining):
            roll = rng.random()
            if roll < 0.45 and not lead.outbound:
                back = min(int(rng.expovariate(1 / (12 * _DAY))), 60 * _DAY)
                t = created - back if back < created else rng.randrange(0, created)
                channel = _PRE_MIX.pick(rng)
            elif roll < 0.65 and live:
                opp = live[rng.randrange(len(live))]
                since = max(opp.created, created)
                t = rng.randrange(since, opp.end) if opp.end > since else since
                channel = _OPP_MIX.pick(rng)
            else:
                t = created + rng.randrange(0, nurture_end - created) if nurture_end > created else created
                channel = _POST_MIX.pick(rng)
            touches.append(self._touch(channel, t, attended, creating=False))
        if len(touches) >= 2 and rng.random() < _TIE_SHARE:
            # Two clicks in the same second (an email click and its landing-page form) tie exactly.
            at, _, first_kind = touches[0]
            campaign, _ = self._campaign_at("email", at)
            touches[1] = (at, campaign.ext_id, "form_fill" if first_kind == "email_click" else "email_click")
        touches.sort()
        return touches

    def _touch(self, channel: str, t: int, attended: set[str], *, creating: bool) -> tuple[int, str, str]:
        rng = self.rng
        campaign, t = self._campaign_at(channel, t)
        if creating:
            return t, campaign.ext_id, _CREATE_KIND.get(campaign.channel, _FORM_FILL).pick(rng)
        kind = _KIND_MIX[campaign.channel].pick(rng)
        if kind in _ATTENDED and campaign.attend_time >= 0:
            if campaign.ext_id in attended:
                # One attendance per person: a second touch on the same event is its follow-up.
                return t, campaign.ext_id, _FOLLOW_UP[campaign.channel]
            attended.add(campaign.ext_id)
            # Most check in during the first minutes; those on the dot tie with colleagues at the session.
            late = 0 if rng.random() < 0.3 else rng.randrange(60, 40 * 60)
            attend = campaign.attend_time + rng.randrange(campaign.attend_days) * _DAY + late
            if attend < self.horizon:
                t = attend
        return t, campaign.ext_id, kind


def generate(out_dir: Path, *, seed: int = 7, scale: str = "small", today: datetime.date) -> dict[str, int]:
    """Write the DESIGN 7 CSV files of a demo organisation into out_dir; return rows written per file."""
    if scale not in SCALES:
        raise ValueError(f"unknown demo scale {scale!r}: choose one of {', '.join(SCALES)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    generator = _Generator(out_dir, seed, SCALES[scale], today)
    generator.build_rates()
    generator.build_people()
    generator.build_campaigns()
    generator.build_accounts()
    return dict(generator.counts)
