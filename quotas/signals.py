"""A deleted account's media lose their owner (``Media.owner`` is SET_NULL): its usage rows become
"no owner" rows in the same transaction."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from quotas.services import usage_orphan


@receiver(pre_delete, sender=get_user_model(), dispatch_uid="quotas.signals.orphan_usage")
def orphan_usage(sender, instance, **kwargs) -> None:
    usage_orphan(instance.get_username())
