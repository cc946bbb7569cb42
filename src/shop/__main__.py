"""``python -m shop``: serve shop (``make run``); ``python -m shop demo``: the walkthrough."""

from shop.cli import main

main()
