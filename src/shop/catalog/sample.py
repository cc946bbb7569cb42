"""The sample catalog: fixed ids, so demos, tests and other contexts can name products.

Loaded at start-up when ``settings.sample_catalog`` is on and the catalog is empty;
inventory stocks the same ids (``shop.inventory.sample``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SampleProduct:
    id: str
    name: str
    description: str
    price: str
    currency: str = "USD"

    def details(self) -> dict[str, object]:
        """The product as contract input."""
        return {"name": self.name, "description": self.description,
                "price_amount": self.price, "currency": self.currency, "active": True}


SAMPLE_PRODUCTS: tuple[SampleProduct, ...] = (
    SampleProduct("keyboard", "Mechanical keyboard",
                  "Tenkeyless mechanical keyboard with tactile brown switches.", "89.00"),
    SampleProduct("mouse", "Wireless mouse",
                  "Ergonomic wireless mouse with a silent click.", "29.50"),
    SampleProduct("monitor", "27-inch monitor",
                  "27-inch IPS monitor, 1440p, adjustable stand.", "249.00"),
    SampleProduct("poster", "Limited poster",
                  "Signed limited-edition print of the invariant diagram; one left.", "15.00"),
    SampleProduct("headphones", "Noise-cancelling headphones",
                  "Over-ear headphones with active noise cancelling.", "129.00"),
    SampleProduct("webcam", "HD webcam", "1080p webcam with a privacy shutter.", "49.90"),
    SampleProduct("desk-lamp", "Desk lamp", "Dimmable LED desk lamp with a warm light.",
                  "34.00"),
    SampleProduct("usb-hub", "USB-C hub", "Seven-port USB-C hub with power delivery.",
                  "39.99"),
)
