"""Lead queue API shapes: the queue as JSON, and disposition bodies and answers.

`action`, `reason` and `at` are read as text and checked by the service, so a bad value is a 422 problem
that names the field (not a type error).
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated

import msgspec

from okr.leads.services import Disposed, LeadQueue, QueueItem

_ACTION = Annotated[str, msgspec.Meta(description="accept, reject or recycle", examples=["reject"])]
_REASON = Annotated[
    str | None,
    msgspec.Meta(description="reject only: one of the active reject reasons", examples=["no budget"]),
]
_AT = Annotated[
    str | None,
    msgspec.Meta(
        description="when it happened, ISO 8601 with offset; now when left out; not in the future, "
        "not before the lead's mql_at",
        examples=["2026-11-20T15:04:00Z"],
    ),
]


class DispositionBody(msgspec.Struct, forbid_unknown_fields=True):
    """One lead's disposition."""

    action: _ACTION
    reason: _REASON = None
    at: _AT = None


class BulkDispositionBody(msgspec.Struct, forbid_unknown_fields=True):
    """The same disposition for many leads (by external id), all or none."""

    leads: list[str]
    action: _ACTION
    reason: _REASON = None
    at: _AT = None


@dataclass(frozen=True, slots=True)
class QueueLeadRead:
    """An open MQL in a queue."""

    external_id: str
    email: str | None
    account: str
    campaign: str | None
    channel: str | None
    mql_at: dt.datetime
    due_at: dt.datetime
    business_seconds_left: int
    time_left: str
    status: str
    rule: str

    @classmethod
    def of(cls, i: QueueItem) -> "QueueLeadRead":
        """The API view of a queue item."""
        return cls(
            external_id=i.external_id,
            email=i.email,
            account=i.account,
            campaign=i.campaign,
            channel=i.channel,
            mql_at=i.mql_at,
            due_at=i.due,
            business_seconds_left=int(i.left.total_seconds()),
            time_left=i.left_text,
            status=i.state,
            rule=i.rule,
        )


@dataclass(frozen=True, slots=True)
class QueueRead:
    """A person's open MQLs, most urgent first; `status` is pending, due_soon or breached."""

    person_id: int
    person: str
    team: str
    may_work: bool
    as_of: dt.datetime
    rules: list[str]
    leads: list[QueueLeadRead]

    @classmethod
    def of(cls, q: LeadQueue) -> "QueueRead":
        """The API view of a queue."""
        return cls(
            person_id=q.owner.id,
            person=q.owner.name,
            team=q.owner.team,
            may_work=q.may_work,
            as_of=q.now,
            rules=q.rules,
            leads=[QueueLeadRead.of(i) for i in q.items],
        )


@dataclass(frozen=True, slots=True)
class DispositionRead:
    """A lead as dispositioned."""

    external_id: str
    action: str
    at: dt.datetime
    reason: str | None

    @classmethod
    def of(cls, d: Disposed) -> "DispositionRead":
        """The API view of a disposition."""
        return cls(external_id=d.external_id, action=d.action, at=d.at, reason=d.reason)


@dataclass(frozen=True, slots=True)
class BulkDispositionRead:
    """Every lead of the batch, as dispositioned."""

    dispositions: list[DispositionRead]


@dataclass(frozen=True, slots=True)
class LeadsProblem:
    """A refused request (RFC 9457 problem): `errors` names each bad field and why."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)
