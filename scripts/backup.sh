#!/usr/bin/env bash
# Nightly database backup (design document 13.4.5): a gzipped plain-SQL pg_dump named by
# date, with old dumps pruned.
#
#   scripts/backup.sh                      # Docker Compose stack in this folder: dumps `db`
#   DATABASE_URL=postgres://... scripts/backup.sh   # any reachable database, via local pg_dump
#
# Host crontab (crontab -e as the user that runs docker), every night at 02:30:
#   30 2 * * * /opt/auuction/scripts/backup.sh >>/var/log/auuction-backup.log 2>&1
#
# Settings (environment):
#   BACKUP_DIR    where dumps go; default var/backups/ in this repository
#   KEEP_DAYS     dumps older than this many days are deleted; default 14
#   BACKUP_MEDIA  1: also archive uploaded photos (Compose mode only); default 0
#   DATABASE_URL  when set, dump that database with the local pg_dump instead of Compose
#                 (a DATABASE_URL in .env is NOT used: in Compose mode it is the container's)
#
# Restore (see docs/deployment.md):
#   gunzip -c auuction-2025-01-31_0230.sql.gz | docker compose exec -T db psql -U auuction -d auuction
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

BACKUP_DIR=${BACKUP_DIR:-$PWD/var/backups}
KEEP_DAYS=${KEEP_DAYS:-14}
BACKUP_MEDIA=${BACKUP_MEDIA:-0}
STAMP=$(date +%F_%H%M)

[[ $KEEP_DAYS =~ ^[0-9]+$ ]] || { echo "KEEP_DAYS must be a whole number of days" >&2; exit 2; }

mkdir -p "$BACKUP_DIR"
# Dumps hold every bidder's name, email and password hash.
chmod 700 "$BACKUP_DIR"
umask 077

target="$BACKUP_DIR/auuction-$STAMP.sql.gz"
partial="$target.partial"
# A failed run must never leave a truncated file that looks like a good backup.
trap 'rm -f "$partial" "$BACKUP_DIR/media-$STAMP.tar.gz.partial"' EXIT

# --clean --if-exists: the dump drops what it recreates, so it restores over a database
# the app has already migrated. --no-owner: restorable as whichever role runs psql.
dump_args=(--clean --if-exists --no-owner)

if [ -n "${DATABASE_URL:-}" ]; then
    command -v pg_dump >/dev/null 2>&1 || { echo "pg_dump is not installed (apt-get install -y postgresql-client)" >&2; exit 1; }
    echo "dumping \$DATABASE_URL to $target"
    pg_dump "${dump_args[@]}" "$DATABASE_URL" | gzip -9 >"$partial"
else
    command -v docker >/dev/null 2>&1 || { echo "docker is not installed; set DATABASE_URL to dump without it" >&2; exit 1; }
    echo "dumping the Compose db service to $target"
    # -T: no TTY, so the binary stream is not mangled (the spec's `docker exec -t` would be).
    docker compose exec -T db pg_dump -U auuction -d auuction "${dump_args[@]}" | gzip -9 >"$partial"
fi
gzip -t "$partial"
mv "$partial" "$target"
echo "wrote $target ($(du -h "$target" | cut -f1))"

if [ "$BACKUP_MEDIA" = 1 ]; then
    if [ -n "${DATABASE_URL:-}" ]; then
        echo "BACKUP_MEDIA=1 is only supported with Docker Compose; skipped" >&2
    else
        media="$BACKUP_DIR/media-$STAMP.tar.gz"
        docker compose exec -T web tar -C /app/var -czf - media >"$media.partial"
        mv "$media.partial" "$media"
        echo "wrote $media ($(du -h "$media" | cut -f1))"
    fi
fi

# Prune old backups; -mtime +N means strictly older than N whole days.
find "$BACKUP_DIR" -maxdepth 1 -type f \( -name 'auuction-*.sql.gz' -o -name 'media-*.tar.gz' \) \
    -mtime +"$KEEP_DAYS" -print -delete
