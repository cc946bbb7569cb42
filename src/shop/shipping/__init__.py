"""The shipping context (event sourced): shipments per order with deterministic tracking
numbers, and an admin switch that makes the carrier refuse (to exercise compensation)."""
