"""Media owners are kept by username (``Media.owner``): when an account is renamed its media
follow, in the transaction of the rename when there is one. (An account deleted: Django sets
their owner to None, ``on_delete=SET_NULL``.)"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save, pre_save

from media.models import Media
from quotas.services import usage_rename

RENAMED_FROM = "_mediastore_renamed_from"  # our attribute on the user being saved


def note_rename(sender, instance, update_fields=None, **kwargs) -> None:
    if instance.pk is None or (update_fields is not None and "username" not in update_fields):
        return
    old = sender.objects.filter(pk=instance.pk).values_list("username", flat=True).first()
    if old is not None and old != instance.get_username():
        setattr(instance, RENAMED_FROM, old)


def follow_rename(sender, instance, **kwargs) -> None:
    old = instance.__dict__.pop(RENAMED_FROM, None)
    if old is not None:
        Media.objects.filter(owner_id=old).update(owner_id=instance.get_username())
        usage_rename(old, instance.get_username())


def connect() -> None:
    user_model = get_user_model()
    pre_save.connect(note_rename, sender=user_model, dispatch_uid="media.owners.note_rename")
    post_save.connect(follow_rename, sender=user_model, dispatch_uid="media.owners.follow_rename")
