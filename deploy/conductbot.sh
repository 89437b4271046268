#!/bin/sh
# `conductbot COMMAND ...` as the service runs it: its user, its environment file, its folder.
# Installed as /usr/local/bin/conductbot by docs/deploy.md ("With systemd"); run it with sudo,
# e.g. `sudo conductbot doctor`, `sudo conductbot backup --out /var/backups/conductbot/`.
set -eu
home=${CONDUCTBOT_HOME:-/opt/conductbot}
env_file=${CONDUCTBOT_ENV_FILE:-/etc/conductbot/env}
user=${CONDUCTBOT_USER:-conductbot}
if [ ! -r "$env_file" ]; then
    echo "conductbot: cannot read $env_file (run it with sudo)" >&2
    exit 2
fi
set -a
. "$env_file"
set +a
# The units' defaults, unless the environment file says otherwise.
export CONDUCTBOT_DB="${CONDUCTBOT_DB:-/var/lib/conductbot/conductbot.sqlite3}"
export MPLCONFIGDIR="${MPLCONFIGDIR:-/var/cache/conductbot/matplotlib}"
umask 077
# No cd: a relative path on the command line means what it means where you typed it (the
# conductbot user must be able to read it).
if [ "$(id -un)" = "$user" ]; then
    exec "$home/.venv/bin/python" "$home/bot.py" "$@"
fi
exec runuser -u "$user" -- "$home/.venv/bin/python" "$home/bot.py" "$@"
