"""The broker adapters, one module each (imported on their own, so that only the client
libraries you use are loaded): ``inprocess``, ``sql`` (in the application's database),
``nats``, ``rabbitmq``, ``redis_streams``, ``kafka``; :func:`broker_from_url` picks one.
"""

from invariant.messaging.brokers.url import broker_from_url

__all__ = ["broker_from_url"]
