#!/usr/bin/env bash
# Deploy benchmark (issue 8, point 5): manager deploy request → applied on the sensor,
# for 1, 100 and 1,000 connection profiles, with the real parts (throw-away PostgreSQL 15,
# mgmt-server's DeployEngine, a sensor-agent process registered over mutual TLS).
# Writes bench/results/deploy.md. Run as root (network namespace) from the repository root:
#   bench/deploy.sh
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ $(id -u) -ne 0 ]]; then
    echo "bench/deploy.sh needs root (it runs the sensor in a network namespace)" >&2
    exit 1
fi
if [[ ! -x /usr/lib/postgresql/15/bin/postgres ]]; then
    echo "bench/deploy.sh needs the PostgreSQL 15 server binaries in /usr/lib/postgresql/15/bin" >&2
    exit 1
fi
results=bench/results/deploy.md
mkdir -p bench/results

command=(cargo bench -p bench --bench deploy)
echo "+ ${command[*]}" >&2
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
report=$("${command[@]}")

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo "unknown CPU")
fs=$(df -T "${TMPDIR:-/tmp}" | awk 'NR==2 {print $2}')
{
    echo "# Deploy benchmark: manager request → applied on the sensor"
    echo
    echo "Run $started on $cpu ($(nproc) CPUs visible, shared with other work: figures are noisy),"
    echo "$(rustc --version), commit $(git rev-parse --short HEAD), bench profile (release)."
    echo "Target (issue 8): 1,000 profiles deployed and applied in under 1 s."
    echo
    echo "Command (root, from the repository root):"
    echo
    echo '```'
    echo "bench/deploy.sh    # runs: ${command[*]}"
    echo '```'
    echo
    echo "What runs: a throw-away PostgreSQL 15 cluster (\`e2e::postgres\`, data in ${TMPDIR:-/tmp}, $fs),"
    echo "mgmt-server's \`DeployEngine\` in the benchmark process (2 worker threads), and a \`sensor-agent\`"
    echo "process (release profile, \`cargo build --release -p sensor-agent\`) in its own network"
    echo "namespace, registered to the manager with a"
    echo "registration key; its data directory is on the same file system. The device starts from the"
    echo "seed scenario (one MCA connection profile, its group policy, pool, two CA trustpoints, the"
    echo "headend identity) and grows to 100 and 1,000 profiles (copies of the seed profile with their"
    echo "own names and aliases). At each size the deploy that changes the configuration is timed once"
    echo "(\"first deploy\"), then re-deploys of the same content (each a new version the sensor parses,"
    echo "validates, writes and applies). The 1-profile re-deploy is the baseline of the ratios."
    echo
    echo "Columns: *request* is \`DeployEngine::deploy\` (compile from the database, validate, store the"
    echo "job); *worker pickup* and *push + sensor apply* come from the job's own timestamps (queued →"
    echo "started → finished; the latter covers reading the job back, the mutual-TLS push, the sensor's"
    echo "check, write and apply, and its answer); *total* is from the request until the job was seen"
    echo "\`DEPLOYED\` (polled every millisecond). Source: \`bench/benches/deploy.rs\`."
    echo "PostgreSQL stamps *queued* at the start of the transaction that stores the job, so *worker"
    echo "pickup* also holds the rest of that transaction and overlaps the end of *request*."
    echo
    echo "$report"
    echo
    echo "### Where the time goes (structure, not figures)"
    echo
    echo "- Manager, compile: one REPEATABLE READ snapshot (\`db::device_policy::load\`); the profile list is one"
    echo "  query whose six correlated sub-selects per profile (group policy, pools, trustpoints, aliases,"
    echo "  URLs) are index lookups, so it grows linearly with the profile count; referenced objects are read"
    echo "  once per distinct object, not per profile."
    echo "- Manager, storing the job: the whole document goes into \`deployment_jobs\` as JSONB (with an audit"
    echo "  row) and the worker reads it back (\`job_config\`) before the push: the document crosses"
    echo "  PostgreSQL twice; the sensor's answer carries the rendered CLI transcript, stored in the job."
    echo "- Sensor: parse + validate + warnings, then two atomic writes (history copy and running.json, each"
    echo "  file fsync + rename + directory fsync: four fsyncs per deploy), the CLI transcript, and the"
    echo "  services' prepare/activate. Trust stores are built lazily per profile on first login, not at deploy."
} > "$results"
echo "wrote $results" >&2
