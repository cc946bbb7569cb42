"""The analytics context: a sales report, a read model fed by ordering's and payments'
integration events (through the inbox)."""
