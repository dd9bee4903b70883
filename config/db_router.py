"""Where each read goes: the replica (DATABASE_REPLICA_URL) for the reads phr.replica
marks as lag-tolerant, the primary for everything else and for every write.

Whatever the caller marked, the consent state (every model of the consent app: choices,
emergency access, withholdings; and proxy grants) and every read the policy makes are
read from the primary: a withdrawn consent takes effect on the next request."""

from consent.policy import inside_policy
from phr.replica import REPLICA, on_the_primary_now, replica_configured, tolerant


def always_primary(model) -> bool:
    return model._meta.app_label == "consent" or model._meta.label_lower == "accounts.proxyaccess"


def reading_from(model) -> str:
    if (
        tolerant()
        and replica_configured()
        and not always_primary(model)
        and not inside_policy()
        and not on_the_primary_now()
    ):
        return REPLICA
    return "default"


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        return reading_from(model)

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica is a copy of the same database

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
