#!/usr/bin/env bash
# The seed scenario running on this machine, in one command (as root):
#   the manager (mgmt-server: HTTPS, its own PostgreSQL), one sensor (sensor-agent in a network
#   namespace), a demo PKI, the seed's MCA connection profile created through the REST API and
#   deployed. It prints what to open and how to connect. Ctrl-C stops everything; running it
#   again reuses the data in $DEMO_DIR (default ./.demo).
#
#   ./demo.sh              run and wait (Ctrl-C to stop)
#   ./demo.sh --connect    also connect with openconnect and show the session, then keep running
#   ./demo.sh --check      connect, check the session is Multiple-certificate, stop (CI)
set -euo pipefail
cd "$(dirname "$0")"

mode=run
case "${1:-}" in
  --connect) mode=connect ;;
  --check) mode=check ;;
  "") ;;
  *) echo "usage: $0 [--connect | --check]" >&2; exit 2 ;;
esac

[ "$(id -u)" -eq 0 ] || { echo "demo.sh needs root: the sensor creates a TUN device and network namespaces" >&2; exit 1; }

DEMO_DIR=${DEMO_DIR:-$PWD/.demo}
SENSOR_NS=mca-demo-sensor
CLIENT_NS=mca-demo-client
HOST_IP=10.99.10.254      # the host (manager) end of the sensor's link
SENSOR_IP=10.99.10.1      # the sensor: management API :8305, VPN :443
CLIENT_IP=10.99.20.2      # the VPN client namespace
SENSOR_CLIENT_IP=10.99.20.1
ADMIN=admin
REG_KEY=Demo-Reg-Key-1
MANAGER_PORT=${MANAGER_PORT:-8443}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

mkdir -p "$DEMO_DIR/pki" "$DEMO_DIR/run"
# The manager's PostgreSQL runs as the postgres user, which must reach $DEMO_DIR/manager.
chmod o+x "$DEMO_DIR"
pids=()
cleanup() {
  set +e
  step "stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  ip netns del "$CLIENT_NS" 2>/dev/null
  ip netns del "$SENSOR_NS" 2>/dev/null
  ip link del mca-demo-h 2>/dev/null
  echo "stopped; data kept in $DEMO_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "1/7 system packages"
scripts/install-deps.sh

step "2/7 building (release)"
cargo build --release --locked -p mgmt-server -p sensor-agent
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release

step "3/7 demo PKI ($DEMO_DIR/pki)"
pki=$DEMO_DIR/pki
if [ ! -f "$pki/user.pem" ]; then
  ca() { openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/O=MCA Demo/CN=$2" \
           -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
           -keyout "$pki/$1.key" -out "$pki/$1.pem" 2>/dev/null; }
  leaf() { openssl req -newkey rsa:2048 -nodes -subj "$3" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
           openssl x509 -req -in "$pki/$1.csr" -CA "$pki/$2.pem" -CAkey "$pki/$2.key" -CAcreateserial -days 825 \
             -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n') \
             -out "$pki/$1.pem" 2>/dev/null; }
  ca machine-ca "Demo Machine CA"
  ca user-ca "Demo User CA"
  leaf machine machine-ca "/O=MCA Demo/OU=Laptops/CN=machine.example.com"
  leaf user user-ca "/O=MCA Demo/CN=client.example.com"
fi
echo "machine certificate: $pki/machine.pem (CN=machine.example.com), user certificate: $pki/user.pem (CN=client.example.com)"

step "4/7 network namespaces"
ip netns del "$CLIENT_NS" 2>/dev/null || true
ip netns del "$SENSOR_NS" 2>/dev/null || true
ip link del mca-demo-h 2>/dev/null || true
ip netns add "$SENSOR_NS"; ip netns add "$CLIENT_NS"
ip -n "$SENSOR_NS" link set lo up; ip -n "$CLIENT_NS" link set lo up
ip link add mca-demo-h type veth peer name mgmt0 netns "$SENSOR_NS"
ip addr add "$HOST_IP/24" dev mca-demo-h; ip link set mca-demo-h up
ip -n "$SENSOR_NS" addr add "$SENSOR_IP/24" dev mgmt0; ip -n "$SENSOR_NS" link set mgmt0 up
ip -n "$SENSOR_NS" link add outside0 type veth peer name outside0 netns "$CLIENT_NS"
ip -n "$SENSOR_NS" addr add "$SENSOR_CLIENT_IP/24" dev outside0; ip -n "$SENSOR_NS" link set outside0 up
ip -n "$CLIENT_NS" addr add "$CLIENT_IP/24" dev outside0; ip -n "$CLIENT_NS" link set outside0 up
echo "sensor namespace $SENSOR_NS ($SENSOR_IP to the manager, $SENSOR_CLIENT_IP to clients), client namespace $CLIENT_NS ($CLIENT_IP)"

step "5/7 manager (https://127.0.0.1:$MANAGER_PORT, private PostgreSQL under $DEMO_DIR/manager)"
password_file=$DEMO_DIR/admin-password
[ -f "$password_file" ] || (umask 077; openssl rand -base64 15 | tr -d '/+=' > "$password_file")
password=$(cat "$password_file")
MGMT_SERVER_INITIAL_ADMIN_PASSWORD=$password "$BIN/mgmt-server" run --data-dir "$DEMO_DIR/manager" \
  --listen "0.0.0.0:$MANAGER_PORT" --initial-admin "$ADMIN" --server-name "$HOST_IP" \
  >"$DEMO_DIR/mgmt-server.log" 2>&1 &
pids+=($!)
for _ in $(seq 120); do
  [ -f "$DEMO_DIR/manager/ca.pem" ] && curl -sf --cacert "$DEMO_DIR/manager/ca.pem" \
    "https://127.0.0.1:$MANAGER_PORT/api/fmc_platform/v1/info/serverversion" >/dev/null && break
  kill -0 "${pids[-1]}" 2>/dev/null || { cat "$DEMO_DIR/mgmt-server.log"; exit 1; }
  sleep 0.5
done

step "6/7 sensor (in $SENSOR_NS)"
ip netns exec "$SENSOR_NS" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$SENSOR_NS" "$BIN/sensor-agent" --control-socket "$DEMO_DIR/run/sensor.sock" run \
  --data-dir "$DEMO_DIR/sensor" --listen "$SENSOR_CLIENT_IP" --management-listen "$SENSOR_IP:8305" \
  --tun-ipv4 192.168.77.1/24 --headend-address "$SENSOR_CLIENT_IP" >"$DEMO_DIR/sensor-agent.log" 2>&1 &
pids+=($!)
for _ in $(seq 60); do [ -S "$DEMO_DIR/run/sensor.sock" ] && break; sleep 0.5; done
sensor() { "$BIN/sensor-agent" --control-socket "$DEMO_DIR/run/sensor.sock" "$@"; }
if ! sensor show managers | grep -q Completed; then
  sensor configure manager add "$HOST_IP" "$REG_KEY"
fi

step "7/7 seed scenario through the REST API, deployed"
python3 scripts/demo_seed.py --url "https://127.0.0.1:$MANAGER_PORT" --cafile "$DEMO_DIR/manager/ca.pem" \
  --username "$ADMIN" --password "$password" --machine-ca "$pki/machine-ca.pem" --user-ca "$pki/user-ca.pem" \
  --device-host "$SENSOR_IP:8305" --reg-key "$REG_KEY" --vpn-name "$SENSOR_CLIENT_IP" --ssl-port 443 \
  --split-include 192.168.77.0/24
sensor show running-config tunnel-group

connect_cmd="ip netns exec $CLIENT_NS openconnect --protocol=anyconnect --cafile $DEMO_DIR/manager/ca.pem \\
    -c $pki/machine.pem -k $pki/machine.key --mca-certificate $pki/user.pem --mca-key $pki/user.key \\
    --usergroup RAVPN-MultiCert --no-dtls https://$SENSOR_CLIENT_IP/"
cat <<INFO

────────────────────────────────────────────────────────────────────────────
 Manager web UI:  https://127.0.0.1:$MANAGER_PORT/   (trust $DEMO_DIR/manager/ca.pem or accept the warning)
   administrator: $ADMIN   password: $password
 REST API (FMC-compatible): https://127.0.0.1:$MANAGER_PORT/api/openapi.json
 Sensor CLI: $BIN/sensor-agent --control-socket $DEMO_DIR/run/sensor.sock show vpn-sessiondb detail anyconnect
 Connect (machine certificate in TLS, user certificate via MCA):
   $connect_cmd
 Logs: $DEMO_DIR/*.log      Stop: Ctrl-C
────────────────────────────────────────────────────────────────────────────
INFO

if [ "$mode" != run ]; then
  step "connecting with openconnect"
  script=$DEMO_DIR/run/vpnc-script.sh
  cat >"$script" <<'SCRIPT'
#!/bin/sh
# Minimal vpnc-script for the demo client namespace: address and the split-include routes.
[ "$reason" = connect ] || exit 0
ip link set dev "$TUNDEV" up mtu "${INTERNAL_IP4_MTU:-1406}"
ip addr add "$INTERNAL_IP4_ADDRESS/32" dev "$TUNDEV"
i=0
while [ "$i" -lt "${CISCO_SPLIT_INC:-0}" ]; do
  eval addr="\$CISCO_SPLIT_INC_${i}_ADDR" len="\$CISCO_SPLIT_INC_${i}_MASKLEN"
  ip route replace "$addr/$len" dev "$TUNDEV"
  i=$((i + 1))
done
SCRIPT
  chmod +x "$script"
  eval "$connect_cmd --background --pid-file=$DEMO_DIR/run/openconnect.pid --script=$script" \
    </dev/null >"$DEMO_DIR/openconnect.log" 2>&1 || { cat "$DEMO_DIR/openconnect.log"; exit 1; }
  for _ in $(seq 40); do sensor show vpn-sessiondb detail anyconnect | grep -q "Username" && break; sleep 0.5; done
  ip netns exec "$CLIENT_NS" ping -c 3 -W 2 192.168.77.1 || echo "(ping through the tunnel failed)"
  detail=$(sensor show vpn-sessiondb detail anyconnect)
  echo "$detail"
  [ -f "$DEMO_DIR/run/openconnect.pid" ] && pids+=("$(cat "$DEMO_DIR/run/openconnect.pid")")
  if [ "$mode" = check ]; then
    grep -q "Auth Mode    : Multiple-certificate" <<<"$detail" || { echo "FAILED: no Multiple-certificate session" >&2; exit 1; }
    grep -q "Username     : client.example.com" <<<"$detail" || { echo "FAILED: wrong username" >&2; exit 1; }
    echo "demo check passed: the session shows Auth Mode : Multiple-certificate"
    exit 0
  fi
fi
echo "running; Ctrl-C to stop"
wait "${pids[0]}"
