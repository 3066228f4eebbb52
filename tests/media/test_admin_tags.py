"""Issue 34: the admin's tag pages cannot make taggit's rows and the media's tag lists disagree.

Regression: taggit registers a ``Tag`` admin of its own, which renamed, merged and deleted tags
without touching any media's ``tag_list`` (what the API returns and, on PostgreSQL, what a search
with tags reads), so a search and the media it found could name different tags. The tags are now
listed read-only, with their media counts.
"""

from __future__ import annotations

import pytest
from taggit.models import Tag

from media.models import Media, TaggedMedia
from tests.conftest import create_media

pytestmark = pytest.mark.django_db

TAGS = "/admin/taggit/tag/"


@pytest.fixture
def superuser(client, django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.org", "pw")
    client.login(username="root", password="pw")
    return client


@pytest.fixture
def tagged(api, id_types):
    create_media(api, "m1", tags=["raw", "good"])
    create_media(api, "m2", tags=["raw"])
    return Tag.objects.get(name="raw")


def agree() -> dict[str, list[str]]:
    """Every media's tag list, after checking that taggit's rows say the same."""
    lists = {m.pid: m.tag_list for m in Media.objects.order_by("pid")}
    rows: dict[str, list[str]] = {pid: [] for pid in lists}
    for pid, name in TaggedMedia.objects.values_list("content_object__pid", "tag__name"):
        rows[pid].append(name)
    assert {pid: sorted(names) for pid, names in rows.items()} == lists
    return lists


def test_the_tag_list_shows_each_tag_with_its_media_count_linked_to_them(superuser, tagged):
    response = superuser.get(TAGS)
    assert response.status_code == 200
    shown = {tag.name: tag.media_count for tag in response.context["cl"].result_list}
    assert shown == {"good": 1, "raw": 2}
    assert '<a href="/admin/media/media/?tags=raw">2</a>' in response.content.decode()
    assert superuser.get(f"{TAGS}{tagged.pk}/change/").status_code == 200  # read-only view


def test_a_superuser_cannot_rename_merge_add_or_delete_tags(superuser, tagged, api):
    before = agree()
    # taggit's own admin took this form (its inline of generic tagged items, empty, included).
    inline = {"taggit_taggeditem_items-TOTAL_FORMS": 0, "taggit_taggeditem_items-INITIAL_FORMS": 0}
    renamed = superuser.post(f"{TAGS}{tagged.pk}/change/", {"name": "renamed", "slug": "renamed", **inline})
    assert renamed.status_code == 403
    assert superuser.post(f"{TAGS}{tagged.pk}/delete/", {"post": "yes"}).status_code == 403
    assert superuser.post(f"{TAGS}add/", {"name": "new", "slug": "new"}).status_code == 403
    superuser.post(TAGS, {"action": "delete_selected", "_selected_action": [tagged.pk], "post": "yes"})
    superuser.post(TAGS, {"action": "render_tag_form", "_selected_action": [tagged.pk]})  # taggit's merge
    superuser.post(f"{TAGS}merge-tags/", {"new_tag_name": "merged"})
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["good", "raw"]
    assert agree() == before == {"m1": ["good", "raw"], "m2": ["raw"]}
    found = api.post("/api/media/search", {"tags_all": ["raw"]}).json()
    assert sorted(item["pid"] for item in found) == ["m1", "m2"]


@pytest.mark.parametrize("role", ["readers", "writers", "admins"])
def test_every_role_sees_the_tag_list_read_only(client, django_user_model, tagged, role):
    """Regression: ``taggit.view_tag`` was in no role, so only superusers saw the tag list."""
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client.login(username="staff", password="pw")
    response = client.get(TAGS)
    assert response.status_code == 200
    assert {tag.name for tag in response.context["cl"].result_list} == {"good", "raw"}
    assert client.post(f"{TAGS}{tagged.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Tag.objects.filter(pk=tagged.pk).exists()
