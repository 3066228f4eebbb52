#!/bin/bash
# Usage: make_site.sh sqlite|postgresql  — runs the earlier server's start-up steps and drives its API.
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../../.." && pwd); WORK=${WORK:-/tmp/earlier-run}; export WORK
set -e
KIND=$1
ROOT=$WORK/$KIND
rm -rf $ROOT $WORK/app-$KIND; mkdir -p $ROOT
cp -r $EARLIER_SRC/app $WORK/app-$KIND
cd $WORK/app-$KIND
export PYTHONPATH=$HERE DJANGO_SECRET_KEY=earlier-secret-key-for-the-trial DJANGO_ALLOWED_HOSTS="localhost 127.0.0.1"
export DJANGO_SUPERUSER_USERNAME=root DJANGO_SUPERUSER_PASSWORD=root-pass-123 DJANGO_SUPERUSER_EMAIL=root@example.org
export DJANGO_SERVICEUSER_USERNAME=sa-mediastore DJANGO_SERVICEUSER_PASSWORD=svc-pass-123
if [ $KIND = sqlite ]; then
  export DJANGO_SETTINGS_MODULE=earlier_sqlite_settings
else
  export DJANGO_SETTINGS_MODULE=config.settings POSTGRES_DB=earlier_importer_src POSTGRES_USER=postgres POSTGRES_PASSWORD= POSTGRES_HOST=127.0.0.1
  psql -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS earlier_importer_src" -c "CREATE DATABASE earlier_importer_src" >/dev/null
fi
PY=$EARLIER_VENV/bin/python
# What app/start-django does at start-up (minus collectstatic and tests):
$PY manage.py makemigrations
$PY manage.py migrate -v0
$PY manage.py ensure_superuser
$PY manage.py ensure_serviceuser
MOTO_PORT=$((20000 + RANDOM % 10000)); WEB_PORT=$((30000 + RANDOM % 10000))
$REPO/.venv/bin/moto_server -H 127.0.0.1 -p $MOTO_PORT > $ROOT/moto.log 2>&1 & MOTO=$!
$PY manage.py runserver 127.0.0.1:$WEB_PORT --noreload > $ROOT/runserver.log 2>&1 & WEB=$!
trap "kill $WEB 2>/dev/null" EXIT; echo $MOTO > $ROOT/moto.pid
for i in $(seq 1 50); do curl -sf http://127.0.0.1:$WEB_PORT/api/hello >/dev/null && curl -sf http://127.0.0.1:$MOTO_PORT/ >/dev/null && break; sleep 0.3; done
$REPO/.venv/bin/python $HERE/drive.py http://127.0.0.1:$WEB_PORT http://127.0.0.1:$MOTO_PORT $ROOT
echo "MOTO_URL=http://127.0.0.1:$MOTO_PORT" > $ROOT/moto.env
