"""Database routing: only models whose tables migrations create are migrated, dumped or loaded."""

from __future__ import annotations


class UnmanagedModelsRouter:
    """Keep unmanaged models (django_rq's admin-only Dashboard) out of dumpdata and loaddata.

    Django's dumpdata asks the routers, not Meta.managed, which models to serialize, so
    without this `manage.py dumpdata` reads a table no migration creates and fails.
    """

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        model = hints.get("model")
        if model is not None and not model._meta.managed:
            return False
        return None
