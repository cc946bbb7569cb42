"""Order fulfilment: the seed's ordering, payment, inventory and shipping contexts as small
aggregates, with the saga and process manager that coordinate them."""
