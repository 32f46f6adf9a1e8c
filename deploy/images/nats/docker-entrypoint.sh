#!/bin/sh
# Same contract as the official nats alpine image: with no arguments, or when the first
# argument is a flag, run nats-server with them; otherwise run the command given.
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
	set -- nats-server "$@"
fi
exec "$@"
