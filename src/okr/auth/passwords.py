"""Password hashing (argon2id) and the password policy."""

import secrets
import unicodedata
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from okr.lib.errors import ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 accepts any length; a cap keeps a huge body from costing CPU
PASSPHRASE_LENGTH = 16  # at this length a password needs no mix of character kinds
POLICY = (
    f"Use at least {MIN_LENGTH} characters. Below {PASSPHRASE_LENGTH} characters, mix at least two of: "
    "lower-case letters, capitals, digits, symbols or spaces."
)

# OWASP's argon2id baseline (m=19 MiB, t=2, p=1): about 70-90 ms per hash on a small server core.
# Hashes made with other parameters still verify and are upgraded at the next login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)


def _kinds(password: str) -> int:
    return sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )


def policy_problem(password: str) -> str | None:
    """Why `password` breaks the policy, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"The password is too short: {POLICY}"
    if len(password) > MAX_LENGTH:
        return f"The password is too long: use at most {MAX_LENGTH} characters."
    if len(set(password)) == 1:
        return f"The password repeats one character: {POLICY}"
    if len(password) < PASSPHRASE_LENGTH and _kinds(password) < 2:
        return f"The password uses only one kind of character: {POLICY}"
    return None


def check_policy(password: str) -> None:
    """Raise ValidationFailed (field `password`) when `password` breaks the policy."""
    problem = policy_problem(password)
    if problem is not None:
        raise ValidationFailed(problem, errors=[{"field": "password", "reason": problem}])


def _normal(password: str) -> str:
    # The same password typed on another keyboard or system may arrive composed differently.
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    """An argon2id hash of `password` (the policy is not checked here)."""
    return _hasher.hash(_normal(password))


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches `password_hash`; a malformed hash never matches."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash, _normal(password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when `password_hash` was made with weaker or different parameters than today's."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def dummy_hash() -> str:
    """A hash of a random secret, verified against when there is no real hash (keeps timing flat)."""
    return _hasher.hash(secrets.token_urlsafe(16))


def verify_and_update(password_hash: str | None, password: str) -> tuple[bool, str | None]:
    """Check `password`; return (matched, new hash to store when the old one needs upgrading).

    Without a stored hash the dummy hash is verified anyway, so an unknown account costs the same
    time as a wrong password.
    """
    if password_hash is None:
        verify_password(dummy_hash(), password)
        return False, None
    if not verify_password(password_hash, password):
        return False, None
    return True, (hash_password(password) if needs_rehash(password_hash) else None)
