"""The payments context (event sourced): charges and refunds through an anti-corruption
layer in front of a (fake) external provider; publishes ``payment.charged`` and
``payment.refunded`` v1."""
