#!/bin/bash
KIND=$1 TOKEN=$2
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../../.." && pwd); WORK=${WORK:-/tmp/earlier-run}; export WORK
export MEDIASTORE_ENV_FILE= DJANGO_SECRET_KEY=our-secret-key-for-the-trial-0123456789abcdef DJANGO_DEBUG=true
export MEDIASTORE_DATA_DIR=$WORK/ours-$KIND MEDIASTORE_RAM_DIR=$WORK/ours-$KIND/ram
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
[ -n "$3" ] && export POSTGRES_DB=$3 POSTGRES_HOST=127.0.0.1 POSTGRES_USER=postgres
cd $REPO
PORT=$((40000 + RANDOM % 10000))
.venv/bin/python manage.py runserver 127.0.0.1:$PORT --noreload > $WORK/ours-$KIND/runserver.log 2>&1 & WEB=$!
trap "kill $WEB" EXIT
for i in $(seq 1 50); do curl -sf http://127.0.0.1:$PORT/api/hello >/dev/null && break; sleep 0.3; done
B=http://127.0.0.1:$PORT/api
echo "login sa-mediastore: $(curl -s -X POST $B/login -H 'Content-Type: application/json' -d '{"username":"sa-mediastore","password":"svc-pass-123"}' | head -c 20)..."
echo "login root: $(curl -s -o /dev/null -w '%{http_code}' -X POST $B/login -H 'Content-Type: application/json' -d '{"username":"root","password":"root-pass-123"}')"
A="Authorization: Bearer $TOKEN"
for pid in D20240301T100000_IFCB001 in-sqlite in-ram on-s3 pending-one; do
  curl -s "$B/media/$pid" -H "$A" | python3 -c "import json,sys; m=json.load(sys.stdin); print(m['pid'], m['store_status'], m['tags'], m['identifiers'], m['metadata'], m['store_config']['type'], m['store_config']['bucket'], 'v'+m['version'], m.get('size'))"
done
echo "content IFCB001 sha256: $(curl -s $B/media/D20240301T100000_IFCB001/content -H "$A" | sha256sum)"
echo "expected:               $(python3 -c "import hashlib; print(hashlib.sha256(b'roi bytes ' * 50).hexdigest())")"
echo "content in-sqlite: $(curl -s $B/media/in-sqlite/content -H "$A")"
echo "content on-s3: $(curl -s $B/media/on-s3/content -H "$A")"
echo "history of D20240301T100000_IFCB001:"; curl -s $B/media/D20240301T100000_IFCB001/history -H "$A" | python3 -c "
import json,sys
for h in json.load(sys.stdin): print('  ', h['version'], h['action'], h['when'], h['user'], h['reason'], [c['field'] for c in h['changes']])"
echo "history of renamed-then-deleted:"; curl -s $B/media/renamed-then-deleted/history -H "$A" | python3 -c "
import json,sys
for h in json.load(sys.stdin): print('  ', h['version'], h['action'], h['pid'], h['when'])"
echo "search shared: $(curl -s -X POST $B/media/search -H "$A" -H 'Content-Type: application/json' -d '{"tags":["shared"]}' | python3 -c "import json,sys; d=json.load(sys.stdin); d=d.get('items', d) if isinstance(d, dict) else d; print(sorted(m['pid'] for m in d))")"
echo "events: $(curl -s "$B/events" -H "$A" | head -c 300)"
