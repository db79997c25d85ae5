"""The declarative base every okr table uses: an identity bigint `id` and shared naming conventions."""

from decimal import Decimal

from advanced_alchemy.base import IdentityBase, orm_registry
from sqlalchemy import Numeric

metadata = orm_registry.metadata

# Rates, percents and weights: exact decimals, never floats.
Rate = Numeric(20, 10, asdecimal=True)
Percent = Numeric(9, 4, asdecimal=True)


class Base(IdentityBase):
    """Abstract base: `id` bigint identity primary key, table name from the class name."""

    __abstract__ = True


__all__ = ["Base", "Decimal", "Percent", "Rate", "metadata"]
