"""The inventory context (event sourced): stock per product, reserved per order, never
below zero. Fulfilment reserves, releases and commits stock with its commands."""
