"""The ordering context (event sourced): draft orders, the credit limit, placing,
cancelling and shipping orders; publishes ``order.placed``, ``order.cancelled`` and
``order.shipped`` v1."""
