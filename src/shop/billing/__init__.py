"""The billing context: invoices per customer, a read model fed by ordering's and
payments' integration events (through the inbox)."""
