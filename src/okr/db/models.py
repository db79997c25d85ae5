"""Every table, imported once so the metadata is complete (Alembic, tests, the app)."""

from okr.db.attribution import (
    AttributionRun,
    AttributionSetting,
    OpportunitySourcing,
    attribution_credit,
    attribution_summary,
)
from okr.db.audit import AuditEvent
from okr.db.base import Base, metadata
from okr.db.bonus import BonusLine, BonusPlan, BonusRun, BonusTrace, Inquiry, InquiryMessage, LedgerEntry
from okr.db.goals import CheckIn, KeyResult, Objective, key_result_owner, objective_team
from okr.db.jobs import ImportJob
from okr.db.people import ApiToken, Period, Person, Team, WebSession
from okr.db.pipeline import Account, Campaign, FxRate, Lead, Opportunity, OpportunitySplit, Touchpoint
from okr.db.sla import FunnelPlan, RejectionReason, SlaPolicy

__all__ = [
    "Account",
    "ApiToken",
    "AttributionRun",
    "AttributionSetting",
    "AuditEvent",
    "Base",
    "BonusLine",
    "BonusPlan",
    "BonusRun",
    "BonusTrace",
    "Campaign",
    "CheckIn",
    "FunnelPlan",
    "FxRate",
    "ImportJob",
    "Inquiry",
    "InquiryMessage",
    "KeyResult",
    "Lead",
    "LedgerEntry",
    "Objective",
    "Opportunity",
    "OpportunitySourcing",
    "OpportunitySplit",
    "Period",
    "Person",
    "RejectionReason",
    "SlaPolicy",
    "Team",
    "Touchpoint",
    "WebSession",
    "attribution_credit",
    "attribution_summary",
    "key_result_owner",
    "metadata",
    "objective_team",
]
