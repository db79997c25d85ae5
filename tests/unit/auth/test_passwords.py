"""Password hashing (argon2id), verification with upgrade, and the password policy."""

import pytest
from argon2 import PasswordHasher

from okr.auth import passwords
from okr.lib.errors import ValidationFailed

GOOD = "Correct-horse-7"


def test_hash_is_argon2id_with_the_chosen_parameters_and_salted() -> None:
    first, second = passwords.hash_password(GOOD), passwords.hash_password(GOOD)
    assert first.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert first != second  # a fresh salt each time
    assert GOOD not in first


def test_verify_accepts_the_password_and_refuses_others() -> None:
    stored = passwords.hash_password(GOOD)
    assert passwords.verify_password(stored, GOOD)
    assert not passwords.verify_password(stored, GOOD + " ")
    assert not passwords.verify_password(stored, "")


@pytest.mark.parametrize("stored", ["", "plaintext", "$argon2id$v=19$m=19456,t=2,p=1$broken", "$2b$12$abc"])
def test_a_malformed_hash_never_matches(stored: str) -> None:
    assert not passwords.verify_password(stored, GOOD)
    assert passwords.needs_rehash(stored)


def test_unicode_forms_of_one_password_match() -> None:
    composed, decomposed = "Caf\u00e9-au-lait-42", "Cafe\u0301-au-lait-42"
    assert passwords.verify_password(passwords.hash_password(composed), decomposed)


def test_an_overlong_password_is_refused_without_hashing() -> None:
    stored = passwords.hash_password(GOOD)
    assert not passwords.verify_password(stored, "x" * (passwords.MAX_LENGTH + 1))


def test_verify_and_update_upgrades_a_weaker_hash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(GOOD)
    assert passwords.needs_rehash(weak)
    ok, new_hash = passwords.verify_and_update(weak, GOOD)
    assert ok and new_hash is not None
    assert new_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify_password(new_hash, GOOD)


def test_verify_and_update_keeps_a_current_hash() -> None:
    assert passwords.verify_and_update(passwords.hash_password(GOOD), GOOD) == (True, None)


def test_verify_and_update_refuses_a_wrong_password_without_upgrading() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(GOOD)
    assert passwords.verify_and_update(weak, "wrong-password-1") == (False, None)


def test_no_stored_hash_still_pays_for_a_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []
    real = passwords.verify_password

    def spy(stored: str, password: str) -> bool:
        checked.append(stored)
        return real(stored, password)

    monkeypatch.setattr(passwords, "verify_password", spy)
    assert passwords.verify_and_update(None, GOOD) == (False, None)
    assert checked == [passwords.dummy_hash()]  # the same work as checking a real account


@pytest.mark.parametrize(
    "password",
    [
        "",
        "Short-1",  # 7 characters
        "abcdefghi",  # 9 characters
        "aaaaaaaaaaaaaaaaaaaa",  # one repeated character, however long
        "abcdefghijkl",  # only lower-case letters, under 16 characters
        "12345678901234",  # only digits
        "x" * (passwords.MAX_LENGTH + 1),
    ],
)
def test_policy_refuses(password: str) -> None:
    problem = passwords.policy_problem(password)
    assert problem is not None
    with pytest.raises(ValidationFailed) as caught:
        passwords.check_policy(password)
    assert caught.value.errors == [{"field": "password", "reason": problem}]
    assert caught.value.status_code == 422


@pytest.mark.parametrize(
    "password",
    [
        "abcdefghij1",  # letters and a digit
        "Abcdefghij",  # capitals and lower case
        "correct horse battery",  # a passphrase: spaces count as symbols
        "correcthorsebatterystaple",  # 16+ characters need no mix
        GOOD,
    ],
)
def test_policy_accepts(password: str) -> None:
    assert passwords.policy_problem(password) is None
    passwords.check_policy(password)


def test_policy_message_says_how_to_fix_it() -> None:
    problem = passwords.policy_problem("short")
    assert problem is not None
    assert "at least 10 characters" in problem
