"""Taggit's rows of media, kept equal to their ``tag_list`` (the copy the API returns and the
history records)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from taggit.models import Tag

from media.models import Media, TaggedMedia


def _tags_by_name(names: set[str]) -> dict[str, Tag]:
    tags = {tag.name: tag for tag in Tag.objects.filter(name__in=names)}
    for name in sorted(names - tags.keys()):  # one insert per new distinct tag, never per media
        try:
            with transaction.atomic():
                tags[name] = Tag.objects.create(name=name)
        except IntegrityError:  # created at the same moment by another request
            tags[name] = Tag.objects.get(name=name)
    return tags


def sync_tags(media: list[Media], *, fresh: bool = False) -> None:
    """Make taggit's rows of these media equal their ``tag_list``."""
    if not media:
        return
    if not fresh:
        TaggedMedia.objects.filter(content_object_id__in=[m.pk for m in media]).delete()
    tags = _tags_by_name({name for m in media for name in m.tag_list})
    TaggedMedia.objects.bulk_create(
        [TaggedMedia(content_object_id=m.pk, tag=tags[name]) for m in media for name in m.tag_list]
    )
