"""The analytics context: a sales report, a read model fed by ordering's and payments'
integration events (through the inbox). It keeps the report in the read-model database, or
in Redis when ``SHOP_ANALYTICS_REDIS_URL`` is set (see ``docs/how-to/services.md``)."""
