"""identity's rules without a server: the account, its one-time code, the password-guess
throttle, the seal, the digest and the password hasher."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shop.identity.domain import (
    ACCOUNT_GUESSES_FREE,
    CODE_TTL,
    FIRST_DELAY,
    FORGET_AFTER,
    GUESSES_FREE,
    MAX_DELAY,
    MAX_WRONG_CODES,
    RESEND_INTERVAL,
    TRUST_FOR,
    Account,
    AlreadyVerified,
    CodeRequestedTooSoon,
    GuessCount,
    Guesses,
    NotVerified,
    TooManyPasswordGuesses,
    Verification,
    email_key,
)
from shop.identity.infrastructure import Argon2Passwords, HmacCodeDigest
from shop.identity.published import CodeSeal, SealError, VerificationCodeIssued
from shop.kernel import CustomerId

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SECRET = "unit-test-secret-0123456789-abcdefghijklmnop"


def account_with_code(digest: str = "right") -> Account:
    account = Account.register(CustomerId("u-1"), " Ada@Example.com ", "$argon2id$hash", NOW)
    account.issue_code(digest, NOW)
    return account


def test_emails_compare_case_insensitively_and_trimmed() -> None:
    assert email_key("  Ada@Example.COM ") == "ada@example.com"
    assert account_with_code().key == "ada@example.com"


def test_the_right_code_verifies_the_account_once() -> None:
    account = account_with_code()
    assert account.verify("right", NOW + timedelta(minutes=1)) is Verification.VERIFIED
    assert account.is_verified and account.code is None
    with pytest.raises(AlreadyVerified):
        account.verify("right", NOW)


def test_wrong_codes_are_counted_and_the_fifth_kills_the_code() -> None:
    account = account_with_code()
    outcomes = [account.verify("wrong", NOW) for _ in range(MAX_WRONG_CODES)]
    assert outcomes == [Verification.WRONG] * (MAX_WRONG_CODES - 1) + [Verification.LOCKED]
    assert account.verify("right", NOW) is Verification.LOCKED
    assert not account.is_verified and account.tries_left == 0


def test_a_code_expires_after_ten_minutes() -> None:
    account = account_with_code()
    assert account.verify("right", NOW + CODE_TTL) is Verification.EXPIRED
    assert account.verify("right", NOW + CODE_TTL - timedelta(seconds=1)) is (
        Verification.VERIFIED)


def test_a_new_code_waits_for_the_resend_interval_and_replaces_the_old_one() -> None:
    account = account_with_code("first")
    with pytest.raises(CodeRequestedTooSoon) as refused:
        account.issue_code("second", NOW + timedelta(seconds=20))
    assert refused.value.retry_after == RESEND_INTERVAL - timedelta(seconds=20)
    account.verify("wrong", NOW)
    account.issue_code("second", NOW + RESEND_INTERVAL)
    assert account.tries_left == MAX_WRONG_CODES  # a fresh code, fresh tries
    assert account.verify("first", NOW + RESEND_INTERVAL) is Verification.WRONG
    assert account.verify("second", NOW + RESEND_INTERVAL) is Verification.VERIFIED


def test_no_code_and_verified_accounts() -> None:
    account = Account.register(CustomerId("u-2"), "bo@example.com", "h", NOW)
    assert account.verify("anything", NOW) is Verification.NO_CODE
    with pytest.raises(NotVerified):
        account.ensure_may_log_in()
    admin = Account.administrator(CustomerId("u-3"), "root@shop.local", "h", NOW)
    admin.ensure_may_log_in()
    assert admin.role == "admin"
    with pytest.raises(AlreadyVerified):
        admin.issue_code("d", NOW)


def test_a_password_change_moves_the_token_version_on() -> None:
    account = Account.register(CustomerId("u-4"), "tv@example.com", "old hash", NOW)
    assert account.token_version == 0
    account.change_password("new hash")
    assert account.password_hash == "new hash" and account.token_version == 1


def wait_of(guesses: Guesses, now: datetime) -> timedelta:
    """How long ``guesses`` make the next guess wait at ``now`` (zero: it may go)."""
    try:
        guesses.reserve(now)
    except TooManyPasswordGuesses as refused:
        return refused.retry_after
    return timedelta(0)


def reserved(guesses: Guesses, times: int, now: datetime) -> Guesses:
    for _ in range(times):
        guesses = guesses.reserve(now).guesses
    return guesses


def test_an_address_guesses_freely_then_waits_double_each_time_up_to_the_cap() -> None:
    guesses = reserved(Guesses(), GUESSES_FREE, NOW)
    assert guesses.source == GuessCount(GUESSES_FREE, NOW)
    waits, now = [], NOW
    while not waits or waits[-1] < MAX_DELAY or len(waits) < 14:
        wait = wait_of(guesses, now)
        assert wait_of(guesses, now + wait - timedelta(microseconds=1)) > timedelta(0)
        waits.append(wait)
        now += wait
        guesses = guesses.reserve(now).guesses
    assert waits[:4] == [FIRST_DELAY, 2 * FIRST_DELAY, 4 * FIRST_DELAY, 8 * FIRST_DELAY]
    assert max(waits) == MAX_DELAY and waits[-1] == MAX_DELAY


def test_a_refused_guess_is_not_counted_and_old_counts_are_forgotten() -> None:
    guesses = reserved(Guesses(), GUESSES_FREE, NOW)
    with pytest.raises(TooManyPasswordGuesses) as refused:
        guesses.reserve(NOW)
    assert refused.value.retry_after == FIRST_DELAY
    assert "try again in 1 s" in str(refused.value)
    later = NOW + FORGET_AFTER
    assert guesses.reserve(later).guesses.source == GuessCount(1, later)


def test_untrusted_addresses_share_the_account_ceiling() -> None:
    guesses, now = Guesses(), NOW
    for _ in range(ACCOUNT_GUESSES_FREE):  # from ever new addresses: a fresh source count
        guesses = Guesses(GuessCount(), guesses.reserve(now).guesses.account, None)
    assert guesses.account == GuessCount(ACCOUNT_GUESSES_FREE, now)
    assert wait_of(guesses, now) == FIRST_DELAY
    trusted = Guesses(GuessCount(), guesses.account, now + TRUST_FOR)
    allowed = trusted.reserve(now)
    assert not allowed.account_counted
    assert allowed.guesses.account == guesses.account  # the owner's guess is not shared
    assert wait_of(Guesses(GuessCount(), guesses.account, now), now) == FIRST_DELAY  # expired


def test_the_right_password_resets_its_address_trusts_it_and_refunds_only_itself() -> None:
    guesses = reserved(Guesses(), 3, NOW)
    attempt = guesses.reserve(NOW)
    right = attempt.guesses.right(attempt, NOW)
    assert right.source == GuessCount(0, NOW)
    assert right.account == GuessCount(3, NOW)  # the other three stay counted
    assert right.trusted(NOW + TRUST_FOR - timedelta(seconds=1))
    assert not right.trusted(NOW + TRUST_FOR)
    again = right.reserve(NOW)
    assert again.guesses.account == right.account  # trusted now: not counted
    assert again.guesses.right(again, NOW).account == right.account


def test_a_sealed_code_opens_only_with_the_secret_and_within_its_ttl() -> None:
    seal = CodeSeal(SECRET)
    sealed = seal.seal("042917", NOW)
    assert "042917" not in sealed
    assert seal.open(sealed, NOW + timedelta(minutes=9), timedelta(minutes=10)) == "042917"
    with pytest.raises(SealError):
        seal.open(sealed, NOW + timedelta(minutes=11), timedelta(minutes=10))
    with pytest.raises(SealError):
        CodeSeal(SECRET + "x").open(sealed, NOW, timedelta(minutes=10))
    with pytest.raises(SealError):
        seal.open(sealed[:-6] + "AAAAAA", NOW, timedelta(minutes=10))


def test_the_published_event_carries_only_the_sealed_code() -> None:
    sealed = CodeSeal(SECRET).seal("555123", NOW)
    message = VerificationCodeIssued(user_id="u-1", email="a@example.com", sealed_code=sealed,
                                     expires_at=NOW + CODE_TTL).to_outbox(source="identity")
    assert "555123" not in str(message.data) + str(message.metadata)
    assert message.message_type == "identity.verification_code_issued"


def test_code_digests_are_keyed_and_bound_to_the_user() -> None:
    digest = HmacCodeDigest(SECRET)
    assert digest("u-1", "123456") == digest("u-1", "123456")
    assert digest("u-1", "123456") != digest("u-2", "123456")
    assert digest("u-1", "123456") != HmacCodeDigest(SECRET + "x")("u-1", "123456")
    assert "123456" not in digest("u-1", "123456")


async def test_argon2id_hashes_verify_and_an_unknown_account_never_matches() -> None:
    passwords = Argon2Passwords()
    hashed = await passwords.hash("correct horse battery")
    assert hashed.startswith("$argon2id$") and "m=19456,t=2,p=1" in hashed
    assert await passwords.verify(hashed, "correct horse battery")
    assert not await passwords.verify(hashed, "wrong horse battery")
    assert not await passwords.verify("not a hash", "correct horse battery")
    assert not await passwords.verify(None, "no such account")
