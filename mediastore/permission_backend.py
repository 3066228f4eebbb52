"""Django's ``ModelBackend``, answering permission checks from the permissions loaded with the
bearer token (``mediastore.auth``) when they were.

On every API request the token's statement also selects its user's permissions
(``mediastore.permissions.permissions_column``), so that checking one costs no further query;
``ModelBackend`` alone would run two (the user's and the groups' permissions). The loaded set is
kept on the user as ``PERMISSIONS_ATTRIBUTE``, an attribute of ours, and this backend's
``get_all_permissions`` (the documented method of an authentication backend) returns it. A user
without it (a session in the admin or on /status/) is checked by ``ModelBackend`` as usual.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from mediastore.permissions import PERMISSIONS_ATTRIBUTE


class PermissionBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        loaded = getattr(user_obj, PERMISSIONS_ATTRIBUTE, None)
        if loaded is None or obj is not None or not user_obj.is_active or user_obj.is_anonymous:
            return super().get_all_permissions(user_obj, obj)
        return loaded
