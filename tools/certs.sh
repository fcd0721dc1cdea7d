#!/usr/bin/env bash
# Makes a demo PKI for Phoenix's TLS tests and demos with the openssl CLI (OpenSSL 3.0+):
#   tools/certs.sh OUTDIR [--trust-domain phoenix.local] [--force]
# Writes, all PEM (keys mode 600, certs 644), leaves signed directly by the root:
#   ca.{crt,key}             "Phoenix Demo CA", ECDSA P-256, 10 years
#   other-ca.{crt,key}       an unrelated CA ("unknown CA" tests)
#   server-ecdsa.{crt,key}   CN=localhost, SAN localhost, *.example.com, example.com, 127.0.0.1
#   server-rsa.{crt,key}     the same with an RSA-2048 key
#   server2-ecdsa.{crt,key}  like server-ecdsa, CN=localhost-rotated, new serial (rotation)
#   other-server.{crt,key}   localhost, signed by other-ca
#   expired.{crt,key}        localhost, valid 2020-01-01..2021-01-01 only
#   notyet.{crt,key}         localhost, valid 2099-01-01..2100-01-01 only
#   client-admin.{crt,key}   CN=admin, URI spiffe://TD/ns/ops/sa/admin
#   client-web.{crt,key}     CN=web, URI spiffe://TD/ns/default/sa/web, DNS web.default.svc
#   client-other.{crt,key}   CN=intruder, URI spiffe://TD/ns/ops/sa/admin, signed by other-ca
# If OUTDIR/ca.crt exists it does nothing, unless --force (then everything is regenerated).
# Files are made in a temp dir inside OUTDIR and moved into place, ca.crt last, so an
# interrupted run never leaves a ca.crt that would make the next run skip.
set -euo pipefail

usage() {
  sed -n '2,3p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

die() {
  echo "certs: $*" >&2
  exit 1
}

outdir=""
trust_domain="phoenix.local"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --trust-domain) [ $# -ge 2 ] || usage; trust_domain=$2; shift 2 ;;
    --trust-domain=*) trust_domain=${1#*=}; shift ;;
    --force) force=1; shift ;;
    -h | --help) usage ;;
    -*) echo "certs: unknown option: $1" >&2; usage ;;
    *) [ -z "$outdir" ] || usage; outdir=$1; shift ;;
  esac
done
[ -n "$outdir" ] || usage
# SPIFFE trust domains are lowercase letters, digits, '.', '-' and '_'.
[[ "$trust_domain" =~ ^[a-z0-9._-]+$ ]] || die "invalid trust domain: $trust_domain"
command -v openssl >/dev/null || die "openssl not found"

if [ -e "$outdir/ca.crt" ] && [ "$force" -ne 1 ]; then
  echo "certs: $outdir/ca.crt exists, nothing to do (use --force to regenerate)"
  exit 0
fi

mkdir -p "$outdir"
umask 077
tmp=$(mktemp -d "$outdir/.certs.XXXXXX")
# shellcheck disable=SC2317  # Invoked by the trap.
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
out=$tmp/out
mkdir "$out" "$tmp/db"

# Runs an openssl command quietly (key generation prints progress), showing its output on failure.
run() {
  if ! "$@" >"$tmp/log" 2>&1; then
    cat "$tmp/log" >&2
    die "failed: $*"
  fi
}

# Random positive serials: 8 random bytes each, prefixed with 01 so the DER INTEGER is never
# negative nor zero and always 9 bytes. One openssl call for all of them.
serials=$(openssl rand -hex 128)
serial_index=0
next_serial() {
  serial="01${serials:$((serial_index * 16)):16}"
  serial_index=$((serial_index + 1))
}

td=$trust_domain
server_san="DNS:localhost, DNS:*.example.com, DNS:example.com, IP:127.0.0.1"
# OpenSSL's config format has no section inheritance: every leaf section repeats these.
leaf="basicConstraints = critical, CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always"
cnf=$tmp/openssl.cnf
cat >"$cnf" <<EOF
[req]
distinguished_name = req_dn
prompt = no
[req_dn]
CN = unused

[ca]
default_ca = demo_ca
[demo_ca]
database = $tmp/db/index.txt
new_certs_dir = $tmp/db
serial = $tmp/db/serial
default_md = sha256
policy = demo_policy
unique_subject = no
email_in_dn = no
copy_extensions = none
[demo_policy]
commonName = supplied

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ecdsa]
$leaf
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $server_san
[server_rsa]
$leaf
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $server_san
[client_admin]
$leaf
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://$td/ns/ops/sa/admin
[client_web]
$leaf
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:spiffe://$td/ns/default/sa/web, DNS:web.default.svc
EOF

ec_key=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
rsa_key=(-newkey rsa:2048)

# make_ca NAME CN
make_ca() {
  next_serial
  run openssl req -x509 -config "$cnf" "${ec_key[@]}" -noenc -keyout "$out/$1.key" \
    -out "$out/$1.crt" -subj "/CN=$2" -days 3650 -extensions v3_ca -set_serial "0x$serial"
}

# make_leaf NAME CA CN EXT_SECTION KEYTYPE(ec|rsa) [DAYS]
make_leaf() {
  local -a key=("${ec_key[@]}")
  [ "$5" = rsa ] && key=("${rsa_key[@]}")
  next_serial
  run openssl req -x509 -config "$cnf" -CA "$out/$2.crt" -CAkey "$out/$2.key" "${key[@]}" -noenc \
    -keyout "$out/$1.key" -out "$out/$1.crt" -subj "/CN=$3" -days "${6:-365}" \
    -extensions "$4" -set_serial "0x$serial"
}

# make_dated_leaf NAME CN STARTDATE ENDDATE: a ca-signed server cert with fixed validity.
# OpenSSL 3.0's req/x509 can only set "now + days", so this goes through `openssl ca`.
make_dated_leaf() {
  next_serial
  run openssl req -new -config "$cnf" "${ec_key[@]}" -noenc -keyout "$out/$1.key" \
    -out "$tmp/$1.csr" -subj "/CN=$2"
  : >"$tmp/db/index.txt"
  echo "$serial" >"$tmp/db/serial"
  run openssl ca -batch -config "$cnf" -cert "$out/ca.crt" -keyfile "$out/ca.key" \
    -in "$tmp/$1.csr" -out "$out/$1.crt" -startdate "$3" -enddate "$4" -notext \
    -extfile "$cnf" -extensions server_ecdsa
}

make_ca ca "Phoenix Demo CA"
make_ca other-ca "Phoenix Other Demo CA"
make_leaf server-ecdsa ca localhost server_ecdsa ec
make_leaf server-rsa ca localhost server_rsa rsa
make_leaf server2-ecdsa ca localhost-rotated server_ecdsa ec
make_leaf other-server other-ca localhost server_ecdsa ec
make_dated_leaf expired localhost 20200101000000Z 20210101000000Z
make_dated_leaf notyet localhost 20990101000000Z 21000101000000Z
make_leaf client-admin ca admin client_admin ec
make_leaf client-web ca web client_web ec
make_leaf client-other other-ca intruder client_admin ec

chmod 600 "$out"/*.key
chmod 644 "$out"/*.crt
count=0
for f in "$out"/*; do
  [ "$f" = "$out/ca.crt" ] && continue
  mv -f "$f" "$outdir/"
  count=$((count + 1))
done
mv -f "$out/ca.crt" "$outdir/"
count=$((count + 1))
echo "certs: wrote $count files to $outdir"
