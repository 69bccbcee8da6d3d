#!/bin/sh
# The demo PKI in $1 (default /pki): a machine CA and a user CA, machine.example.com and
# client.example.com certificates. Kept if already there.
set -e
pki=${1:-/pki}
mkdir -p "$pki"
[ -f "$pki/user.pem" ] && exit 0
ca() { openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/O=MCA Demo/CN=$2" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout "$pki/$1.key" -out "$pki/$1.pem" 2>/dev/null; }
leaf() {
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' > "$pki/ext.cnf"
  openssl req -newkey rsa:2048 -nodes -subj "$3" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2.key" -CAcreateserial -days 825 \
    -extfile "$pki/ext.cnf" -out "$pki/$1.pem" 2>/dev/null
}
ca machine-ca "Demo Machine CA"
ca user-ca "Demo User CA"
leaf machine machine-ca "/O=MCA Demo/OU=Laptops/CN=machine.example.com"
leaf user user-ca "/O=MCA Demo/CN=client.example.com"
