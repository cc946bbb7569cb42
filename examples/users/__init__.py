"""The seed's User contract end to end: a state-stored aggregate with its table, migrations,
JSON Schema, repository and HTTP boundary."""
