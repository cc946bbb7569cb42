"""What an operator does to a running application, whether from the ``invariant`` command
line or the web console: one function per action, so that both do each thing one way."""
