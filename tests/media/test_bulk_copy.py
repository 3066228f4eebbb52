"""A bulk create writes the same rows whichever way they go in: with COPY (``media.copyrows``, on
PostgreSQL) or with ``bulk_create`` and simple-history's ``bulk_history_create`` (the earlier path,
still SQLite's). On PostgreSQL each test builds one batch each way, with ``copy_enabled`` patched
off for the second, and compares the rows field by field; on both databases the rows are also
checked against what they must say (owner, history user and reason, events, tag links, usage)."""

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import media.copyrows as copyrows
from media.models import Media, MediaEvent, TaggedMedia
from media.schemas import MediaIn
from media.services import media_insert, media_prepare_many
from media.usage import recount
from mediastore.errors import Conflict
from quotas.models import Usage
from tests.conftest import media_body

pytestmark = pytest.mark.django_db

BATCH = 100
LIST = [1, "two", None]
LATER = (timezone.now() + timedelta(days=3)).isoformat()  # one time for every batch of a run
# Different per media whatever the path: left out of the comparison, checked on their own.
VOLATILE = {"id", "pk", "media_pk", "seq", "mark", "created", "updated", "store_key", "time"} | {
    "history_id",
    "history_date",
}


def items(prefix: str) -> list[dict]:
    stores = [{"type": "DictStore", "bucket": "bulk-a"}, {"type": "DictStore", "bucket": "bulk-b"}]
    out = []
    for i in range(BATCH):
        body = media_body(
            f"{prefix}{i}",
            store_config=stores[i % 2],
            identifiers={"doi": f"10.1234/{prefix}{i}", "alt": f"L'{i} \\n"},
            metadata={
                "i": i,
                "half": i / 2,
                "nested": {"ok": i % 3 == 0, "list": [1, "two", None]},
                "s": 'a"b',
            },
            tags=[f"t{i % 7}", "every", "Ünïcode tag, with comma"],
        )
        if i % 3 == 1:
            body["expires_at"] = LATER
        elif i % 3 == 2:
            body["expires_at"] = None  # never, rather than the store's default
        out.append(body)
    return out


@pytest.fixture
def alt_type(api, id_types):
    assert api.post("/api/identifier", {"name": "alt", "pattern": ""}).status_code == 200


def create(api, prefix: str, *, plain: bool, monkeypatch) -> int:
    """Create a batch through the API (``plain``: on the earlier path); its statement count."""
    with monkeypatch.context() as patch:
        if plain:
            patch.setattr(copyrows, "copy_enabled", lambda: False)
        with CaptureQueriesContext(connection) as queries:
            response = api.post("/api/media/create", items(prefix))
    assert response.status_code == 200, response.content[:500]
    assert [m["pid"] for m in response.json()] == [f"{prefix}{i}" for i in range(BATCH)]
    return len(queries.captured_queries)


def same_shape(values: dict, prefix: str) -> str:
    """``values`` without the volatile ones, the batch's prefix replaced: equal for equal batches."""
    kept = {k: v for k, v in values.items() if k not in VOLATILE}
    return json.dumps(kept, sort_keys=True, default=str).replace(prefix, "<p>")


def rows(model, prefix: str) -> list[dict]:
    found = model.objects.filter(pid__startswith=prefix).order_by("pid")
    return [{f.attname: getattr(row, f.attname) for f in model._meta.concrete_fields} for row in found]


def batch_rows(prefix: str) -> dict[str, list[str]]:
    history = Media.history.model
    media_rows = rows(Media, prefix)
    links = {
        (link.content_object.pid, link.tag.name)
        for link in TaggedMedia.objects.filter(content_object__pid__startswith=prefix).select_related(
            "content_object", "tag"
        )
    }
    events = [
        {**e, "media": {k: v for k, v in e["media"].items() if k not in VOLATILE}}
        for e in rows(MediaEvent, prefix)
    ]
    return {
        "media": [same_shape(r, prefix) for r in media_rows],
        "history": [same_shape(r, prefix) for r in rows(history, prefix)],
        "events": [same_shape(e, prefix) for e in events],
        "links": sorted(json.dumps(link).replace(prefix, "<p>") for link in links),
    }


def check_batch(prefix: str, user) -> None:
    """What every batch must say, on either path."""
    media = {m.pid: m for m in Media.objects.filter(pid__startswith=prefix).select_related("store_config")}
    assert len(media) == BATCH
    history = Media.history.model.objects.filter(pid__startswith=prefix)
    assert history.count() == BATCH
    dates = set()
    for row in history:
        m = media[row.pid]
        assert (row.id, row.history_type, row.history_user_id, row.history_change_reason) == (
            m.pk,
            "+",
            user.pk,
            "",
        )
        for field in Media.history.model.tracked_fields:
            assert getattr(row, field.attname) == getattr(m, field.attname), field.attname
        dates.add(row.history_date)
        assert row.history_date <= m.created
    assert len(dates) == 1  # one time for the whole write
    for i, pid in enumerate(sorted(media, key=lambda p: int(p.removeprefix(prefix)))):
        m = media[pid]
        assert m.owner_id == user.username and m.version == 1 and m.store_status == "PENDING"
        assert m.identifiers["doi"] == f"10.1234/{prefix}{i}" and m.metadata["nested"]["list"] == [
            1,
            "two",
            None,
        ]
        assert set(m.tags.names()) == set(m.tag_list) == {f"t{i % 7}", "every", "Ünïcode tag, with comma"}
        never = i % 3 == 2 or (i % 3 == 0 and m.store_config.default_ttl is None)
        assert (m.expires_at is None) == never, i
    events = MediaEvent.objects.filter(pid__startswith=prefix).order_by("seq")
    assert [e.type for e in events] == ["media.created"] * BATCH
    for event in events:
        m = media[event.pid]
        assert (event.media_pk, event.mark, event.version, event.user) == (m.pk, m.mark, 1, user.username)
        assert event.media["pk"] == m.pk and event.media["tags"] == m.tag_list
        assert event.time in dates  # the write's time, as the history's
    seqs = [e.seq for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + BATCH))
    assert recount() == {
        (u.store_id, u.owner): (u.bytes, u.media) for u in Usage.objects.all() if u.media or u.bytes
    }


def test_copy_and_plain_paths_write_the_same_rows(api, alt_type, user, monkeypatch):
    create(api, "warm-", plain=False, monkeypatch=monkeypatch)  # the stores and tags exist for both
    counts = {}
    for prefix, plain in (("copy-", False), ("plain-", True)):
        before = {(u.store_id, u.owner): u.media for u in Usage.objects.all()}
        counts[prefix] = create(api, prefix, plain=plain, monkeypatch=monkeypatch)
        check_batch(prefix, user)
        after = {(u.store_id, u.owner): u.media for u in Usage.objects.all()}
        assert sorted(after[key] - before.get(key, 0) for key in after) == [BATCH // 2, BATCH // 2]
    copied, plain = batch_rows("copy-"), batch_rows("plain-")
    for table in copied:
        assert copied[table] == plain[table], table
    assert counts["copy-"] <= counts["plain-"], counts


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's")
def test_copy_is_one_statement_per_table_for_wrappers_and_the_log(api, alt_type):
    """The metrics count statements through ``execute_wrapper``, the budgets through the query log:
    both see each COPY once."""
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper), CaptureQueriesContext(connection) as queries:
        assert api.post("/api/media/create", items("w-")).status_code == 200
    copies = [sql.split("(")[0].strip() for sql in seen if sql.startswith("COPY")]
    assert copies == ['COPY "media_media"', 'COPY "media_historicalmedia"', 'COPY "media_mediaevent"']
    assert len([q for q in queries.captured_queries if q["sql"].startswith("COPY")]) == 3


@pytest.mark.parametrize("plain", [False, True])
def test_a_pid_taken_meanwhile_creates_nothing(user, alt_type, monkeypatch, plain):
    """Another request creating one of the pids between the check and the insert: 409, no row."""
    if plain:
        monkeypatch.setattr(copyrows, "copy_enabled", lambda: False)
    objs = media_prepare_many([MediaIn(**body) for body in items("race-")], user=user)
    media_insert(media_prepare_many([MediaIn(**items("race-")[7])], user=user), user=user)
    counts = (Media.objects.count(), Media.history.model.objects.count(), MediaEvent.objects.count())
    with pytest.raises(Conflict, match="nothing was created"):
        media_insert(objs, user=user)
    assert (Media.objects.count(), Media.history.model.objects.count(), MediaEvent.objects.count()) == counts
    assert recount()[(objs[7].store_config_id, user.username)] == (0, 1)


def test_new_media_is_the_media_keywords_build():
    """``new_media`` (positional, as ``Model.from_db`` builds) gives the object ``Media(**values)``
    gives: every attribute, defaults included, and the store cached (no query to read it)."""
    from media.models import new_media
    from stores.models import StoreConfig

    store = StoreConfig.objects.create(type="DictStore", bucket="new-media")
    values = {"pid": "nm", "pid_type_id": "x", "store_key": "k", "metadata": {"a": 1}, "tag_list": ["t"]}
    fast = new_media(store, store_config_id=store.pk, **values)
    plain = Media(store_config=store, **values)
    assert {k: v for k, v in vars(fast).items() if k != "_state"} == {
        k: v for k, v in vars(plain).items() if k != "_state"
    }
    assert (fast._state.adding, fast._state.db) == (plain._state.adding, plain._state.db) == (True, "default")
    assert fast.identifiers == {} and fast.identifiers is not new_media(store, **dict(values)).identifiers
    with CaptureQueriesContext(connection) as queries:
        assert fast.store_config is store
    assert queries.captured_queries == []


def test_new_instance_is_the_keywords_build():
    """``new_instance`` (the events' and new media's builder) gives what ``Model(**values)`` gives,
    for a few values or none, with a fresh object for each callable default; an unknown name is a
    TypeError, as for the keywords."""
    from media.models import new_instance

    values = {"type": "media.created", "pid": "p", "media_pk": 3, "mark": 9, "version": 1, "media": {"a": 1}}
    for given in (values, {}, {"pid": "only", "time": timezone.now()}):
        fast, plain = new_instance(MediaEvent, dict(given)), MediaEvent(**given)
        assert {k: v for k, v in vars(fast).items() if k != "_state"} == {
            k: v for k, v in vars(plain).items() if k != "_state"
        }
        assert fast._state.adding and plain._state.adding
    assert new_instance(MediaEvent, {}).changed == [] and new_instance(MediaEvent, {}).changed is not (
        new_instance(MediaEvent, {}).changed
    )
    with pytest.raises(TypeError, match="no field 'media_id'"):
        new_instance(MediaEvent, {"media_id": 3})


JSON_VALUES = [
    {"instrument": {"id": 3, "name": "IFCB"}, "depth": 0.5, "ok": True, "none": None},
    {"big": 2**70, "small": -(2**63), "exp": [1e16, 1e-7, -0.0, 1.7976931348623157e308, 5e-324]},
    {"text": 'Ünï "quoted" \\ back\nline\ttab \u2028 \U0001f600', "empty": {}, "list": []},
    ["a", 1, 2.5, None, False, [[["deep"]]]],
]


@pytest.mark.parametrize("value", JSON_VALUES)
def test_json_text_is_the_jsonb_of_json_dumps(value):
    """What COPY sends for a JSONField (``copyrows.json_text``, orjson's text) is read by the
    database as the value ``json.dumps`` (Django's way) gives."""
    text = copyrows.json_text(value)
    assert json.loads(text) == json.loads(json.dumps(value))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # as text: jsonb's = holds 1.0 and 1 equal, its text keeps each number's scale
            cursor.execute("SELECT %s::jsonb::text, %s::jsonb::text", [text, json.dumps(value)])
            stored, djangos = cursor.fetchone()
            assert stored == djangos


def test_json_text_falls_back_to_json_dumps_where_orjson_differs():
    """NaN and infinities (orjson writes null, json.dumps NaN, which PostgreSQL refuses), keys that
    are not strings, lone surrogates and times without the encoder are json.dumps' text or error."""
    from django.core.serializers.json import DjangoJSONEncoder

    for value in ({"a": [1, {"b": float("nan")}]}, {"a": float("-inf")}, {1: "x"}, {"s": "\ud800"}):
        assert copyrows.json_text(value) == json.dumps(value)
    moment = timezone.now()
    with pytest.raises(TypeError):
        copyrows.json_text({"t": moment})
    encoded = copyrows.json_text({"t": moment}, DjangoJSONEncoder, DjangoJSONEncoder().default)
    assert json.loads(encoded) == json.loads(json.dumps({"t": moment}, cls=DjangoJSONEncoder))


@pytest.mark.parametrize("plain", [False, True])
def test_the_answer_is_the_created_media(api, alt_type, user, monkeypatch, plain):
    """``POST /api/media/create`` answers with the dict each media's ``media.created`` event carries
    (``media_create_answered``): the bytes ``media_out_dict`` of the inserted media gives (how the
    answer was built before), and the same JSON as ``POST /api/media/read`` and the event."""
    from media.schemas import media_out_dict
    from media.services import insert_recorded
    from mediastore.pagination import json_response

    if plain:
        monkeypatch.setattr(copyrows, "copy_enabled", lambda: False)
    objs = media_prepare_many([MediaIn(**body) for body in items("svc-")], user=user)
    created = insert_recorded(objs, user=user)
    assert [event.media["pid"] for event in created] == [obj.pid for obj in objs]
    answered = json_response([event.media for event in created]).content
    assert answered == json_response([media_out_dict(obj) for obj in objs]).content

    response = api.post("/api/media/create", items("ans-"))
    assert response.status_code == 200, response.content[:500]
    pids = [f"ans-{i}" for i in range(BATCH)]
    assert [m["pid"] for m in response.json()] == pids
    assert response.json() == api.post("/api/media/read", pids).json()
    events = {e.pid: e.media for e in MediaEvent.objects.filter(pid__in=pids)}
    for answer in response.json():
        event = events[answer["pid"]]
        assert {k: v for k, v in answer.items() if k not in VOLATILE} == {
            k: v for k, v in event.items() if k not in VOLATILE
        }
        assert (event["pk"], event["mark"]) == (answer["pk"], answer["mark"])


def test_created_history_row_reads_the_media_values():
    """``CreatedRow`` (a COPY's history row) gives every field of the history row as the media has
    it, and the history's own values on top; a field missing from the media's instance dictionary
    (deferred) is still read through the media."""
    from media.history import CreatedRow, history_model
    from media.models import new_media
    from stores.models import StoreConfig

    store = StoreConfig.objects.create(type="DictStore", bucket="created-row")
    media = new_media(store, store_config_id=store.pk, pid="cr", pid_type_id="x", metadata={"a": [1]})
    moment = timezone.now()
    row = CreatedRow(media, moment, 7, "why")
    _historical, kept = history_model()
    for name in kept:
        assert getattr(row, name) is getattr(media, name), name
    assert (row.history_date, row.history_user_id, row.history_change_reason, row.history_type) == (
        moment,
        7,
        "why",
        "+",
    )
    del media.__dict__["hold_reason"], row.__dict__["hold_reason"]
    media.__dict__["hold_reason"] = "read through"
    assert row.hold_reason == "read through"


def test_new_store_keys_are_uuid4_hex():
    """Store keys are spelled as ``uuid.uuid4().hex`` spells them: a version 4, RFC 4122 UUID in 32
    lowercase hex digits, every other bit random."""
    import uuid

    from media.rules import new_store_key

    keys = [new_store_key() for _ in range(2000)]
    assert len(set(keys)) == len(keys)
    ones = 0
    for key in keys:
        parsed = uuid.UUID(hex=key)
        assert (parsed.hex, parsed.version, parsed.variant) == (key, 4, uuid.RFC_4122)
        ones |= parsed.int
    fixed = (0xF000 << 64) | (0xC000 << 48)  # the version's and the variant's bits
    assert ones | fixed == (1 << 128) - 1  # every random bit was 1 at least once
