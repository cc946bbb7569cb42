"""The sample stock: the units inventory holds of the sample catalog's products (named by
their fixed ids) when ``settings.sample_catalog`` is on; only the poster is scarce."""

from __future__ import annotations

SAMPLE_STOCK: dict[str, int] = {
    "keyboard": 50, "mouse": 100, "monitor": 5, "poster": 1, "headphones": 20,
    "webcam": 30, "desk-lamp": 40, "usb-hub": 60,
}
