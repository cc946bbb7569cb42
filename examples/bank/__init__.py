"""The seed's bank account (examples 61-64), built on invariant."""
