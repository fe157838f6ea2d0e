#!/bin/sh
# The `krgo` command: runs the launcher (krgo.cjs, beside this file) with node.
#
# Set, NODE_EXTRA_CA_CERTS makes Node 20 build its whole root certificate store (its ~140
# bundled roots and the extra ones, parsed by OpenSSL 3) as the process starts, before any
# JavaScript: 80-90 ms of CPU on every command, whether it opens a TLS connection or not
# (nodejs/node#40524; Node 24 moves that work off the main thread, nodejs/node#59856). The path
# is handed to krgo under another name instead, and krgo adds those certificates to node's
# default store when it makes its first TLS connection (src/registry/extra-ca-certs.ts), so they
# are trusted exactly as node would trust them. Programs krgo runs for the user get the variable
# back as it was.
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
  KRGO_DEFERRED_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS
  export KRGO_DEFERRED_EXTRA_CA_CERTS
  unset NODE_EXTRA_CA_CERTS
fi
# npm links the command from node_modules/.bin: the launcher is beside the file, not the link.
self=$(readlink -f -- "$0")
exec node "${self%/*}/krgo.cjs" "$@"
