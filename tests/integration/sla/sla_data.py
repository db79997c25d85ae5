"""A small SLA data set with hand-computed figures for 2026-Q3 (America/New_York, default rule 24 business
hours Mon-Fri 09:00-17:00). The clock is pinned to 2026-08-15 16:00 UTC (Saturday 12:00 in New York).

| MQL | rep | MQL at (New York) | answer | business hours | 24 h rule | last touch before MQL |
| --- | --- | --- | --- | --- | --- | --- |
| A1 | Rita | Fri Jul 3 16:00 | accepted Mon Jul 6 11:00 | 3 | met | CW (webinar) |
| A2 | Rita | Mon Jul 6 09:00 | rejected Fri Jul 10 09:00, no budget | 32 | breached | CW |
| A3 | Sam | Tue Jul 7 10:00 | rejected 12:00, wrong persona | 2 | met | CO (outbound) |
| A4 | Sam | Wed Aug 12 10:00 | open, due Mon Aug 17 10:00 | | pending | CO (a CW touch after the MQL) |
| A5 | - | Mon Jul 20 10:00 | open | | breached | none |
| A6 | Rita | Mon Aug 3 10:00 | accepted 11:30 | 1.5 | met | CO |

Met 3, breached 2, pending 1: compliance 3/5. Accepted 2, rejected 2: acceptance 1/2. Median 2.5 h.
"""

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from tests.integration.kpis.pipeline_data import PipelineData, at

from okr.db.models import Campaign, Lead, Person

NOW = dt.datetime(2026, 8, 15, 16, 0, tzinfo=dt.UTC)


@dataclass
class SlaData:
    """The rows the tests refer to."""

    rita: Person
    sam: Person
    cw: Campaign
    co: Campaign
    leads: dict[str, Lead]


async def sla_data(db: AsyncSession) -> SlaData:
    """Create the data set and commit."""
    d = PipelineData(db)
    rita = await d.person("rita@example.com", "sales", "Rita Rep")
    sam = await d.person("sam@example.com", "sales", "Sam Seller")
    mia = await d.person("mia@example.com", "marketing", "Mia Marketer")
    cw = await d.campaign("CW", mia, "webinar")
    co = await d.campaign("CO", mia, "outbound")
    leads = {
        "A1": await d.lead("A1", "ACC", owner=rita, mql_at="2026-07-03T20:00Z", accepted_at="2026-07-06T15:00Z"),
        "A2": await d.lead("A2", "ACC", owner=rita, mql_at="2026-07-06T13:00Z", rejected_at="2026-07-10T13:00Z"),
        "A3": await d.lead("A3", "ACC", owner=sam, mql_at="2026-07-07T14:00Z", rejected_at="2026-07-07T16:00Z"),
        "A4": await d.lead("A4", "ACC", owner=sam, mql_at="2026-08-12T14:00Z"),
        "A5": await d.lead("A5", "ACC", mql_at="2026-07-20T14:00Z"),
        "A6": await d.lead("A6", "ACC", owner=rita, mql_at="2026-08-03T14:00Z", accepted_at="2026-08-03T15:30Z"),
    }  # fmt: skip
    leads["A3"].rejection_reason = "wrong persona"
    for n, (lead, campaign, when) in enumerate(
        [
            ("A1", cw, "2026-07-01T12:00Z"),
            ("A2", cw, "2026-07-05T12:00Z"),
            ("A3", co, "2026-07-06T12:00Z"),
            ("A4", co, "2026-08-10T12:00Z"),
            ("A4", cw, "2026-08-13T12:00Z"),  # after the MQL: not the MQL's campaign
            ("A6", cw, "2026-07-01T12:00Z"),
            ("A6", co, "2026-08-02T12:00Z"),  # the last touch before the MQL wins
        ]
    ):
        await d.touch(f"T{n}", leads[lead], campaign, at(when))
    await db.commit()
    return SlaData(rita, sam, cw, co, leads)
