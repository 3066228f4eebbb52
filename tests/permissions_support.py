"""The role groups as the migration creates them, for tests that run after a transactional test's
flush (which empties every table, so data from migrations is gone)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client

from mediastore.permissions import ROLES


def role(name: str) -> Group:
    """The group ``name`` with its permissions, created again if a flush removed it."""
    group, created = Group.objects.get_or_create(name=name)
    if created:
        for perm in ROLES[name]:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
    return group


def staff(name: str, group: str) -> Client:
    """A test client logged in to the admin as a new staff user ``name`` of the role ``group``."""
    user = get_user_model().objects.create_user(name, password="pw", is_staff=True)
    user.groups.add(role(group))
    client = Client()
    client.force_login(user)
    return client
