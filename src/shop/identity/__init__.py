"""The identity context: accounts, email verification with one-time codes, log-in and
access tokens, password changes.

How secrets are kept (the security design)
------------------------------------------
* **Passwords** are hashed with argon2id (OWASP's minimum: 19 MiB, 2 passes) in a worker
  thread; only the hash is stored, in identity's own table ``identity_accounts``. Accounts
  are state-stored, not event-sourced: no event, outbox row or message ever carries a
  password or its hash.
* **One-time codes** (6 digits, uniformly random) are stored only as an HMAC-SHA256 digest
  under a key derived from ``SHOP_SECRET`` (a plain hash of a 6-digit number would be
  brute-forced offline in a moment). A code works for 10 minutes, survives at most 5 wrong
  tries (then only a new code verifies the account), and a new code can be asked for once a
  minute (else 429 with ``Retry-After``).
* **The code reaches only the email.** The request never sends mail: it writes the
  integration event ``identity.verification_code_issued`` to the outbox in the account's
  transaction, carrying the code *sealed* (Fernet, i.e. AES-CBC + HMAC, with a key derived
  from ``SHOP_SECRET`` by HKDF for this one purpose, and a time-to-live). The outbox, the
  broker, the consumer's inbox and dead letters see only the sealed form; notifications
  queues an email job whose payload keeps the code sealed; the job worker opens it only to
  render the email, and the job row is deleted once the email is sent (a job that failed
  for good stays dead with the code still sealed, and useless once expired).
* **Logs and responses** never contain the password, its hash or the code: validation
  errors do not echo input, and log lines name accounts by id.
* **Password guesses** (log-in, and the current password of a password change) are
  throttled per email and address, with growing waits, and per email from all addresses
  it does not trust (see :class:`~shop.identity.domain.Guesses`). Each guess is counted
  in the database, in a transaction of its own, *before* the slow check, so concurrent
  guesses cannot slip past the count; unknown emails are counted alike.
* **Tokens** are HMAC-SHA256 JWTs (``shop.platform.auth.Tokens``) that expire after
  ``SHOP_TOKEN_TTL`` and name the account's token version; every request checks that the
  account exists and still has that version (a password change moves it on), and takes
  the role from the account. A tampered, expired or revoked token is 401.
* **User enumeration**: only registration tells that an email is taken (409); log-in,
  verification and new-code requests answer alike for unknown and known emails (see
  :mod:`shop.identity.api`).

The admin account (``SHOP_ADMIN_EMAIL``/``SHOP_ADMIN_PASSWORD``, role admin, verified) is
made at start-up when no account has that email.
"""
