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

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from invariant.messaging.jobs import Job
from shop.identity.published import CodeSeal
from shop.notifications.application import SEND_EMAIL, send_email
from shop.notifications.infrastructure import SmtpMailer, consume, mail_sink, metadata
from shop.platform.module import Module

if TYPE_CHECKING:
    from invariant.hosting import Host
    from shop.platform.context import ShopContext

CONSUMER = "notifications"


def module(shop: ShopContext) -> Module:
    """notifications' part of the shop."""
    settings = shop.settings
    mailer = SmtpMailer(settings.smtp_host, settings.smtp_port)
    seal = CodeSeal(settings.secret)

    async def run(job: Job) -> None:
        await send_email(job.id, job.payload, mailer, seal, shop.clock)

    @asynccontextmanager
    async def lifespan(host: Host) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if settings.mail_sink:
                await stack.enter_async_context(mail_sink(
                    settings.smtp_host, settings.smtp_port, settings.data / "mail"))
            stack.push_async_callback(mailer.close)  # before the sink stops
            yield

    return Module(name="notifications", consumers={CONSUMER: consume},
                  jobs={SEND_EMAIL: run}, tables=metadata, lifespan=lifespan)
