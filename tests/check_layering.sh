#!/bin/sh
# The core (common, hl7v2, xml, mapping, mllp, delivery, auth) must not include networking or database headers, so fixtures
# alone can test it; only store/sqlite may include SQLite; only net/ and main.cpp may include Asio
# or Beast. Prints every violation and exits 1 if there is one.
set -u
root=${1:-$(dirname "$0")/../adapter}
status=0
check() {  # check <folder> <pattern> <why>
  hits=$(grep -rnE "#include *[<\"]($2)" "$root/$1" 2>/dev/null)
  if [ -n "$hits" ]; then
    echo "layering: $1 must not include $3:"
    echo "$hits"
    status=1
  fi
}
net='boost/asio|boost/beast|sys/socket\.h|netinet/|arpa/inet\.h|openssl/ssl\.h'
db='sqlite3\.h|libpq-fe\.h|postgresql/'
for core in common hl7v2 xml mapping mllp delivery auth; do
  check "$core" "$net" "networking headers"
  check "$core" "$db" "database headers"
done
check app "$net" "networking headers (app talks to the network through net/ only)"
check app "$db" "database headers (app talks to storage through store/inbox_store.h only)"
check store/inbox_store.h "$db" "database headers (it is the engine-neutral interface)"
check store/outbox.h "$db" "database headers (it is the engine-neutral interface)"
check net "$db" "database headers"
[ $status -eq 0 ] && echo "layering: ok"
exit $status
