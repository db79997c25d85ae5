"""Money: integer minor units, Decimal rates, exact allocation (DESIGN 6.4). No float anywhere."""

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

# ISO 4217 currencies okr knows, with their minor-unit decimals.
CURRENCY_DECIMALS: dict[str, int] = {
    "AED": 2, "ARS": 2, "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0,
    "CNY": 2, "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2,
    "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2,
    "MYR": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PEN": 2, "PHP": 2, "PLN": 2, "QAR": 2, "RON": 2,
    "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2,
    "VND": 0, "ZAR": 2,
}  # fmt: skip

K = TypeVar("K", bound=Hashable)


class MoneyError(ValueError):
    """A money value cannot be read or converted."""


def decimals(currency: str) -> int:
    """Minor-unit decimals of a currency; raises MoneyError when it is unknown."""
    try:
        return CURRENCY_DECIMALS[currency.upper()]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}") from None


def parse_decimal(text: str) -> Decimal:
    """Read a plain decimal string (`12500.00`, `-3`, `0.5`); no exponents, no thousands separators."""
    s = text.strip()
    if not s:
        raise MoneyError("empty number")
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise MoneyError(f"not a number: {text!r}") from None
    if not value.is_finite() or "e" in s.lower():
        raise MoneyError(f"not a plain decimal number: {text!r}")
    return value


def to_minor(amount: str | Decimal, currency: str) -> int:
    """Major units (`12500.00`) to integer minor units; refuses more decimals than the currency has."""
    value = parse_decimal(amount) if isinstance(amount, str) else amount
    places = decimals(currency)
    scaled = value.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} has more than {places} decimals for {currency.upper()}")
    return int(scaled)


def to_major(minor: int, currency: str) -> Decimal:
    """Integer minor units to an exact Decimal in major units, with the currency's decimals."""
    places = decimals(currency)
    return Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places))


def round_half_up(value: Decimal) -> int:
    """Round an exact Decimal amount of minor units half up (away from zero at .5) to an int."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def convert(minor: int, rate: Decimal, from_currency: str, to_currency: str) -> int:
    """Convert minor units at `rate` (to_currency per from_currency), rounding half up once."""
    shift = decimals(to_currency) - decimals(from_currency)
    return round_half_up(Decimal(minor) * rate * Decimal(1).scaleb(shift))


def format_money(minor: int, currency: str) -> str:
    """Human text for an amount: `USD 12,500.00` (grouping, the currency's decimals)."""
    major = to_major(minor, currency)
    return f"{currency.upper()} {major:,}"


def allocate(
    amount: int, weights: Sequence[tuple[K, Decimal]], *, sort_keys: Sequence[str] | None = None
) -> dict[K, int]:
    """Split integer `amount` over weighted keys by the largest-remainder rule of DESIGN 6.4.

    Each key gets floor(A * w / W); the units left go one each to the largest fractional parts,
    ties to the larger weight, then to the smaller stable id (`sort_keys[i]`, else str(key)).
    The result sums to `amount` exactly; a negative amount is -allocate(|amount|).
    """
    if amount < 0:
        return {k: -v for k, v in allocate(-amount, weights, sort_keys=sort_keys).items()}
    if not weights:
        if amount == 0:
            return {}
        raise MoneyError("cannot allocate a non-zero amount over no weights")
    # Exact integer ratios over one common denominator: no Decimal context can round a share.
    ratios = []
    for _, w in weights:
        if isinstance(w, bool) or not isinstance(w, Decimal | int) or w < 0:
            raise MoneyError(f"weights must be non-negative Decimals, got {w!r}")
        ratios.append(w.as_integer_ratio())
    common = math.lcm(*(d for _, d in ratios))
    scaled = [n * (common // d) for n, d in ratios]
    total = sum(scaled)
    if total == 0:
        if amount == 0:
            return {k: 0 for k, _ in weights}
        raise MoneyError("cannot allocate a non-zero amount over weights that are all 0")
    if sort_keys is not None and len(sort_keys) != len(weights):
        raise MoneyError("sort_keys must give one id per weight")
    keys = [k for k, _ in weights]
    if len(set(keys)) != len(keys):
        seen: set[K] = set()
        for k in keys:
            if k in seen:
                raise MoneyError(f"duplicate key {k!r} in allocation")
            seen.add(k)
    ids = sort_keys if sort_keys is not None else _StrKeys(keys)
    return dict(zip(keys, allocate_scaled(amount, scaled, total, ids), strict=True))


class _StrKeys(Sequence[str]):
    """str(key) per key, built only when a tie-break needs it."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[Hashable]) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, i: int) -> str:  # type: ignore[override]
        return str(self._keys[i])


def allocate_scaled(amount: int, scaled: Sequence[int], total: int, ids: Sequence[Any]) -> list[int]:
    """`allocate` on integer weights already on one scale: `scaled` (>= 0) summing to `total` (> 0).

    The same largest-remainder rule (DESIGN 6.4), by position: share i is floor(A * s_i / total), the
    units left go one each to the largest remainders, ties to the larger weight, then the smaller
    `ids[i]` (any keys ordering as the ids do), then the earlier position; read only when a unit is left.
    """
    if amount < 0:
        return [-v for v in allocate_scaled(-amount, scaled, total, ids)]
    products = [amount * s for s in scaled]
    result = [p // total for p in products]
    left = amount - sum(result)
    if left:
        # Largest fractional part first (all share the denominator), then larger weight, then smaller id,
        # then the earlier position (the stable order).
        n = len(scaled)
        keys = zip([-(p % total) for p in products], [-s for s in scaled], ids, range(n), strict=True)
        if left == 1:
            result[min(keys)[3]] += 1
        else:
            for *_, i in sorted(keys)[:left]:
                result[i] += 1
    return result


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units with its currency."""

    minor: int
    currency: str

    def __str__(self) -> str:
        return format_money(self.minor, self.currency)
