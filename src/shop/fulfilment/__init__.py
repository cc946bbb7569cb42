"""The fulfilment context: the process manager that takes a placed order through
inventory, payments and shipping (with deadlines and compensations), and answers ordering's
``GetFulfilmentStatus``."""
