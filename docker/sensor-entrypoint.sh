#!/bin/sh
# Starts the sensor with no configuration and names its manager; the manager registers it
# (MANAGER_HOST, REGISTRATION_KEY and NAT_ID from the environment).
set -e
sensor-agent run --data-dir /var/lib/sensor-agent --listen 0.0.0.0 --management-listen 0.0.0.0:8305 \
  --tun-ipv4 192.168.77.1/24 &
agent=$!
for _ in $(seq 60); do [ -S /run/sensor-agent/control.sock ] && break; sleep 0.5; done
if ! sensor-agent show managers | grep -q Completed; then
  sensor-agent configure manager add "${MANAGER_HOST:?}" "${REGISTRATION_KEY:?}" ${NAT_ID:-}
fi
wait "$agent"
