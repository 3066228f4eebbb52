"""Signals of the media floor, for the apps above it (which ``media`` must not import)."""

from django.dispatch import Signal

# Sent inside the transaction that deletes media, before their rows go, with ``media_pks``: the
# primary keys of the media being deleted. ``content`` removes their replicas with them.
media_deleting = Signal()
