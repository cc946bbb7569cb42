"""shop as ``invariant``'s operator commands see it::

    INVARIANT_APP=shop.operations:app invariant projections status

finds the database ``make run`` uses (``var/shop/shop.db``, or what ``SHOP_DATA`` and
``INVARIANT_*`` say, read as shop reads them) and shop's projections, consumers and job
handlers, as every bounded context declares them.
"""

from __future__ import annotations

from invariant.config import Settings
from invariant.operable import Parts
from invariant.projections import ProjectionSet, ReadModelDatabase
from invariant.store.port import EventStorage
from shop.config import ShopSettings
from shop.platform.runtime import Shop, invariant_settings


class ShopOperations:
    """shop's :class:`~invariant.operable.Operable`."""

    def settings(self) -> Settings:
        """The settings ``make run`` runs with (the same environment read the same way)."""
        return invariant_settings(ShopSettings.from_env())

    def parts(self, storage: EventStorage, database: ReadModelDatabase) -> Parts:
        """Every context's projections, consumers and job handlers, wired as in the running
        shop onto ``storage`` and ``database`` (nothing is started)."""
        return shop_parts(Shop(ShopSettings.from_env(), storage=storage,
                               read_models=database))


def shop_parts(shop: Shop) -> Parts:
    """``shop``'s projections, consumers and job handlers, as operators act on them."""
    composition = shop.host.composition
    return Parts(projections=ProjectionSet(shop.app.store, composition.projections),
                 consumers=shop.consumers, jobs=composition.jobs)


app = ShopOperations()
"""What ``INVARIANT_APP=shop.operations:app`` (or ``invariant --app``) names."""
