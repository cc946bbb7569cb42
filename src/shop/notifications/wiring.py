"""How the notifications context is put together for the platform: :func:`module`."""

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
    mailer = SmtpMailer(settings.smtp_host, settings.smtp_port,
                        size=settings.smtp_connections)
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
