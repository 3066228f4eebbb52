#!/bin/bash
# Follow docs/moving-over.md ("Moving from the earlier server") against the database the earlier server made.
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../../.." && pwd); WORK=${WORK:-/tmp/earlier-run}; export WORK
set -e
KIND=$1 SOURCE=$2
OLD=$WORK/$KIND
export MEDIASTORE_ENV_FILE= DJANGO_SECRET_KEY=our-secret-key-for-the-trial-0123456789abcdef DJANGO_DEBUG=true
export MEDIASTORE_DATA_DIR=$WORK/ours-$KIND MEDIASTORE_RAM_DIR=$WORK/ours-$KIND/ram
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
rm -rf $MEDIASTORE_DATA_DIR; mkdir -p $MEDIASTORE_DATA_DIR
if [ -n "$3" ]; then export POSTGRES_DB=$3 POSTGRES_HOST=127.0.0.1 POSTGRES_USER=postgres; psql -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $3" -c "CREATE DATABASE $3" >/dev/null; fi
cd $REPO
M=".venv/bin/python manage.py"
$M migrate -v0                                        # 1. our server, empty database
mkdir -p $MEDIASTORE_DATA_DIR/stores/legacy           # 3. the filesystem store copied by hand
cp -a $OLD/files $MEDIASTORE_DATA_DIR/stores/legacy/files
echo "=== dry run"; $M import_earlier --source "$SOURCE" --map-path $OLD=legacy   # 4.
echo "=== apply"; $M import_earlier --source "$SOURCE" --map-path $OLD=legacy --apply --copy-bytes   # 5.
echo "=== again"; $M import_earlier --source "$SOURCE" --map-path $OLD=legacy --apply | tail -4
