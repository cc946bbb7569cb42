"""How shop's bounded contexts are put together in one process."""
