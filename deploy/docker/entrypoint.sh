#!/bin/sh
# Entry point of the NQP image: seed the numba cache, then exec `nqp ARGS...` as PID 1 so
# that SIGTERM reaches it directly (graceful drain: stop accepting, finish, checkpoint).
set -eu
seed="${NUMBA_CACHE_SEED:-/opt/nqp/numba-cache}"
if [ -n "${NUMBA_CACHE_DIR:-}" ] && [ -d "$seed" ]; then
    mkdir -p "$NUMBA_CACHE_DIR"
    if [ -z "$(ls -A "$NUMBA_CACHE_DIR" 2>/dev/null)" ]; then
        cp -R "$seed"/. "$NUMBA_CACHE_DIR"/ 2>/dev/null || true
    fi
fi
exec nqp "$@"
