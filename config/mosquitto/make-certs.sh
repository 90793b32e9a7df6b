#!/usr/bin/env bash
# Make a private certificate authority (CA) and the certificates of the broker's TLS listener,
# with openssl only (no internet). See README.md ("TLS") for installing and rotating them.
set -euo pipefail
umask 077  # keys are created unreadable for others; certificates are made readable below

PROG=${0##*/}
DIR=./certs
DAYS=825       # server and client certificates (many TLS clients refuse longer lifetimes)
CA_DAYS=3650   # the CA: replacing it means touching every hub, so it lives long
KEY_TYPE=rsa   # rsa (2048 bits: what every hub's TLS stack speaks) or ec (P-256)
FORCE=false
# The gateway's MQTT client ids (iot-gateway, iot-gateway-1, ...) start with this; a hub
# certificate must never name one of them (see README.md, "Client ids").
GATEWAY_PREFIX=iot-gateway

usage() {
    cat <<EOF
Usage: $PROG [options] server NAME [NAME ...]
       $PROG [options] client ID [ID ...]
       $PROG [options] ca

Makes, in DIR (default $DIR):
  ca.crt, ca.key         a private CA, created on first use and never replaced by this script;
                         ca.crt goes to the broker, every hub and the gateway; keep ca.key
                         offline.
  server.crt, server.key the broker's certificate and key, valid for every NAME given: the host
                         names and IP addresses hubs (and the gateway) connect to, e.g.
                           $PROG server mqtt.example.cn 203.0.113.7
  clients/ID.crt, .key   optional: a client certificate per hub, its common name (CN) the
                         household id, for a listener with require_certificate (README.md).

An existing certificate is kept (the command says so and succeeds) unless -f is given; a
server certificate whose names differ from the NAMEs asked for is an error without -f.

Options:
  -d DIR    where the files are (default $DIR)
  -f        make the server or client certificates again (rotation); the CA is never replaced
  -k TYPE   key type for new keys: rsa (default, 2048 bits) or ec (P-256)
  -D DAYS   validity of server and client certificates (default $DAYS)
  -C DAYS   validity of a new CA (default $CA_DAYS)
  -h        this help
EOF
}

die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}
note() { printf '%s: %s\n' "$PROG" "$*" >&2; }

new_key() {  # new_key FILE: a new private key, mode 600
    local options=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048)
    [[ $KEY_TYPE == rsa ]] || options=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256)
    # Older openssl prints progress dots on standard error: keep it quiet unless it fails.
    openssl genpkey "${options[@]}" -out "$1" 2>"$1.err" || die "openssl genpkey: $(cat "$1.err")"
    rm -f "$1.err"
    chmod 600 "$1"
}

new_key_quick() {  # new_key_quick FILE: a throw-away P-256 key
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

serial() { printf '0x%s' "$(openssl rand -hex 16)"; }

make_ca() {
    if [[ -e $DIR/ca.crt || -e $DIR/ca.key ]]; then
        [[ -e $DIR/ca.crt && -e $DIR/ca.key ]] || die "$DIR has only half a CA (ca.crt, ca.key)"
        note "CA exists: $DIR/ca.crt (kept)"
        return
    fi
    mkdir -p "$DIR"
    local tmp_key=$DIR/.ca.key.$$ tmp_crt=$DIR/.ca.crt.$$
    trap 'rm -f "$tmp_key" "$tmp_crt"' EXIT
    new_key "$tmp_key"
    openssl req -new -x509 -key "$tmp_key" -out "$tmp_crt" -days "$CA_DAYS" -sha256 \
        -set_serial "$(serial)" \
        -subj "/O=care gateway/CN=care gateway MQTT CA $(date -u +%Y-%m-%d)" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash"
    chmod 644 "$tmp_crt"
    mv "$tmp_key" "$DIR/ca.key"
    mv "$tmp_crt" "$DIR/ca.crt"
    trap - EXIT
    note "made CA $DIR/ca.crt (key $DIR/ca.key: keep it offline, it can sign anything)"
}

require_ca() {
    [[ -e $DIR/ca.crt && -e $DIR/ca.key ]] || make_ca
}

sign() {  # sign NAME SUBJECT EXTENSIONS: make NAME.key (if missing) and NAME.crt signed by the CA
    local name=$1 subject=$2 extensions=$3 key=$1.key
    local tmp_key=$1.key.$$ tmp_crt=$1.crt.$$ tmp_csr=$1.csr.$$ tmp_ext=$1.ext.$$
    trap 'rm -f "$tmp_key" "$tmp_crt" "$tmp_csr" "$tmp_ext"' EXIT
    if [[ ! -e $key ]] || $FORCE; then
        # A new certificate for an existing name gets a new key too: the old one may have leaked.
        new_key "$tmp_key"
        key=$tmp_key
    fi
    printf '%s\n' "$extensions" >"$tmp_ext"
    openssl req -new -key "$key" -subj "$subject" -out "$tmp_csr"
    openssl x509 -req -in "$tmp_csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" \
        -set_serial "$(serial)" -days "$DAYS" -sha256 -extfile "$tmp_ext" -out "$tmp_crt" \
        2>/dev/null || die "signing $name.crt failed"
    openssl verify -CAfile "$DIR/ca.crt" "$tmp_crt" >/dev/null || die "$name.crt does not verify"
    chmod 644 "$tmp_crt"
    if [[ $key == "$tmp_key" ]]; then mv "$tmp_key" "$name.key"; fi
    mv "$tmp_crt" "$name.crt"
    rm -f "$tmp_csr" "$tmp_ext"
    trap - EXIT
}

san_of() {  # san_of CERT: its subjectAltName entries, one a line, sorted
    openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null |
        tail -n +2 | tr ',' '\n' | sed 's/^ *//; s/^IP Address:/IP:/' | grep -v '^$' | sort
}

server() {
    (($# > 0)) || die "server: give the host names and/or IP addresses hubs connect to (-h)"
    local name san=() list
    for name in "$@"; do
        if [[ $name =~ ^[0-9]+(\.[0-9]+){3}$ || $name == *:* ]]; then
            san+=("IP:$name")
        elif [[ $name =~ ^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
            san+=("DNS:$name")
        else
            die "server: not a host name or IP address: '$name'"
        fi
    done
    if [[ -e $DIR/server.crt ]] && ! $FORCE; then
        if [[ "$(san_of "$DIR/server.crt")" == "$(normalised_san "${san[@]}")" ]]; then
            note "server certificate exists for these names: $DIR/server.crt (kept; -f makes a new one)"
            return
        fi
        die "$DIR/server.crt exists for other names ($(san_of "$DIR/server.crt" | paste -sd ' '))" \
            "- give -f to replace it"
    fi
    require_ca
    list=$(IFS=,; printf '%s' "${san[*]}")
    # Clients check the subjectAltName only; a CN holds at most 64 characters, so not a name.
    sign "$DIR/server" "/O=care gateway/CN=care gateway MQTT broker" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=$list"
    note "made $DIR/server.crt for $(san_of "$DIR/server.crt" | paste -sd ' ') (key $DIR/server.key)"
}

normalised_san() {  # normalised_san ENTRY...: the entries as openssl prints them, sorted
    # IPv6 addresses print expanded, so compare what openssl makes of them in a throw-away
    # certificate rather than the names as given.
    local tmp_key=$DIR/.san.key.$$ list
    list=$(IFS=,; printf '%s' "$*")
    new_key_quick "$tmp_key"
    openssl req -new -x509 -key "$tmp_key" -subj /CN=x -days 1 -addext "subjectAltName=$list" |
        san_of /dev/stdin
    rm -f "$tmp_key"
}

client() {
    (($# > 0)) || die "client: give one or more household ids (-h)"
    local id
    for id in "$@"; do
        # The CN becomes the MQTT username (use_identity_as_username) and so a topic level in
        # the ACL (homes/%u/#) and the client id (use_username_as_clientid).
        [[ $id =~ ^[A-Za-z0-9_-]+$ ]] ||
            die "client: a household id is letters, digits, '-' and '_' only: '$id'"
        [[ $id != "$GATEWAY_PREFIX"* ]] ||
            die "client: '$id' starts with the gateway's client id '$GATEWAY_PREFIX'"
    done
    require_ca
    mkdir -p "$DIR/clients"
    for id in "$@"; do
        if [[ -e $DIR/clients/$id.crt ]] && ! $FORCE; then
            note "client certificate exists: $DIR/clients/$id.crt (kept; -f makes a new one)"
            continue
        fi
        sign "$DIR/clients/$id" "/O=care gateway/CN=$id" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid"
        note "made $DIR/clients/$id.crt (key $DIR/clients/$id.key) for household $id"
    done
}

while getopts ':d:fk:D:C:h' opt; do
    case $opt in
        d) DIR=$OPTARG ;;
        f) FORCE=true ;;
        k) KEY_TYPE=$OPTARG ;;
        D) DAYS=$OPTARG ;;
        C) CA_DAYS=$OPTARG ;;
        h) usage; exit 0 ;;
        :) die "option -$OPTARG needs a value (-h for help)" ;;
        *) die "unknown option -$OPTARG (-h for help)" ;;
    esac
done
shift $((OPTIND - 1))

[[ $KEY_TYPE == rsa || $KEY_TYPE == ec ]] || die "-k: rsa or ec, not '$KEY_TYPE'"
[[ $DAYS =~ ^[1-9][0-9]*$ && $CA_DAYS =~ ^[1-9][0-9]*$ ]] || die "-D, -C: a number of days"
command -v openssl >/dev/null || die "openssl is not installed"
(($# > 0)) || { usage >&2; exit 2; }

command=$1
shift
case $command in
    ca) (($# == 0)) || die "ca takes no arguments"; make_ca ;;
    server) server "$@" ;;
    client) client "$@" ;;
    *) usage >&2; exit 2 ;;
esac
