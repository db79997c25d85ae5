"""Build small, hand-checkable pipeline data sets straight into the database (no importer involved)."""

import datetime as dt
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from okr.db.models import Account, Campaign, FxRate, Lead, Opportunity, Person, Team, Touchpoint

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(text: str) -> dt.datetime:
    """An aware UTC instant from `2026-08-01T12:00Z`-style text."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


class PipelineData:
    """Adds rows one at a time and flushes, so ids are there for the next row."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db
        self.teams: dict[str, Team] = {}
        self._accounts: dict[str, Account] = {}
        self._owner: Person | None = None

    async def team(self, name: str) -> Team:
        if name not in self.teams:
            self.teams[name] = Team(name=name)
            self.db.add(self.teams[name])
            await self.db.flush()
        return self.teams[name]

    async def person(self, email: str, team: str, name: str | None = None) -> Person:
        person = Person(
            email=email,
            name=name or email.split("@")[0].replace(".", " ").title(),
            team_id=(await self.team(team)).id,
            role="member",
            created_at=NOW,
            updated_at=NOW,
        )
        self.db.add(person)
        await self.db.flush()
        return person

    async def owner(self) -> Person:
        """A sales rep to own opportunities."""
        if self._owner is None:
            self._owner = await self.person("rep@example.com", "sales", "Rita Rep")
        return self._owner

    async def campaign(
        self,
        external_id: str,
        owner: Person | None,
        channel: str = "webinar",
        *,
        cost: int = 0,
        currency: str = "USD",
        start: str | None = None,
        end: str | None = None,
    ) -> Campaign:
        campaign = Campaign(
            external_id=external_id,
            name=f"Campaign {external_id}",
            channel=channel,
            owner_id=owner.id if owner else None,
            cost=cost,
            currency=currency,
            start_date=dt.date.fromisoformat(start) if start else None,
            end_date=dt.date.fromisoformat(end) if end else None,
        )
        self.db.add(campaign)
        await self.db.flush()
        return campaign

    async def account(self, external_id: str, segment: str | None = None) -> Account:
        if external_id not in self._accounts:
            account = Account(external_id=external_id, name=f"Account {external_id}", segment=segment)
            self.db.add(account)
            await self.db.flush()
            self._accounts[external_id] = account
        return self._accounts[external_id]

    async def lead(
        self,
        external_id: str,
        account: str,
        *,
        created_at: str = "2026-01-05T12:00Z",
        mql_at: str | None = None,
        sql_at: str | None = None,
        accepted_at: str | None = None,
        email: str | None = None,
        rejected_at: str | None = None,
        owner: Person | None = None,
    ) -> Lead:
        lead = Lead(
            external_id=external_id,
            account_id=(await self.account(account)).id,
            email=email or f"{external_id.lower()}@example.com",
            owner_id=owner.id if owner else None,
            created_at=at(created_at),
            mql_at=at(mql_at) if mql_at else None,
            sql_at=at(sql_at) if sql_at else None,
            accepted_at=at(accepted_at) if accepted_at else None,
            rejected_at=at(rejected_at) if rejected_at else None,
            rejection_reason="no budget" if rejected_at else None,
        )
        self.db.add(lead)
        await self.db.flush()
        return lead

    async def touch(self, external_id: str, lead: Lead, campaign: Campaign, occurred_at: dt.datetime) -> None:
        self.db.add(
            Touchpoint(
                external_id=external_id, lead_id=lead.id, campaign_id=campaign.id, occurred_at=occurred_at
            )
        )
        await self.db.flush()

    async def opportunity(
        self,
        external_id: str,
        *,
        amount: int,
        currency: str = "USD",
        created_at: str | dt.datetime = "2026-06-01T12:00Z",
        closed_at: str | None = None,
        status: str = "open",
        account: str | None = None,
        name: str | None = None,
        owner: Person | None = None,
        probability: str | None = None,
        forecast_category: str | None = None,
    ) -> Opportunity:
        opp = Opportunity(
            external_id=external_id,
            account_id=(await self.account(account or f"ACC-{external_id}")).id,
            name=name or f"Deal {external_id}",
            owner_id=(owner or await self.owner()).id,
            probability=Decimal(probability) if probability is not None else None,
            forecast_category=forecast_category,
            amount=amount,
            currency=currency,
            created_at=created_at if isinstance(created_at, dt.datetime) else at(created_at),
            closed_at=at(closed_at) if closed_at else None,
            status=status,
        )
        self.db.add(opp)
        await self.db.flush()
        return opp

    async def rate(self, currency: str, rate: str, valid_from: str) -> None:
        self.db.add(
            FxRate(
                currency=currency, rate_to_base=Decimal(rate), valid_from=dt.date.fromisoformat(valid_from)
            )
        )
        await self.db.flush()
