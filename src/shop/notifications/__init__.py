"""The notifications context: emails to customers, from integration events.

It consumes identity's events (``identity.user_registered``, ``.verification_code_issued``,
``.user_verified``, ``.password_changed``) and ordering's (``order.placed``,
``order.cancelled``, ``order.shipped``) as consumer group ``notifications`` (inbox:
each message once; unsupported versions and malformed events parked in the dead-letter
store), keeps its own table of recipients (customer id → email, from identity's events:
no query into identity), and queues one ``notifications.send_email`` job per email. The job
worker sends them over SMTP (``SHOP_SMTP_HOST``/``SHOP_SMTP_PORT``) with retries and
backoff; a job that keeps failing ends dead (``invariant_jobs``, state ``dead``).

A verification code travels sealed (see :mod:`shop.identity`): the job payload keeps it
sealed, the worker opens it only to render the email, and the job row is deleted once the
email is sent.

With ``SHOP_MAIL_SINK=on`` (the default) the module's lifespan runs a local SMTP sink on
that port, saving every message as ``SHOP_DATA/mail/<UTC time>-<uuid>.eml``.
"""
