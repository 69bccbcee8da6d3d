#!/usr/bin/env bash
# Micro-benchmarks of vpn-core (issue 8, point 6): CSTP codec, MCA signature check,
# chain validation, aggregate-auth XML parsing. Runs criterion and turns its estimates
# into bench/results/micro.md. Run from the repository root:
#   bench/micro.sh                  # criterion defaults (3 s warm-up, 5 s per benchmark)
#   bench/micro.sh --quick          # 1 s warm-up, 2 s per benchmark
set -euo pipefail

cd "$(dirname "$0")/.."
criterion_args=()
if [[ "${1:-}" == "--quick" ]]; then
    criterion_args=(--warm-up-time 1 --measurement-time 2)
fi
target_dir="${CARGO_TARGET_DIR:-target}"
results=bench/results/micro.md
mkdir -p bench/results

command=(cargo bench -p vpn-core --bench micro -- "${criterion_args[@]}")
echo "+ ${command[*]}" >&2
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
rm -rf "$target_dir/criterion/cstp_codec" "$target_dir/criterion/cstp_stream" \
    "$target_dir/criterion/mca_signature" "$target_dir/criterion/chain_validation" \
    "$target_dir/criterion/aggauth_parsing"
"${command[@]}" >&2

python3 - "$target_dir/criterion" "$results" "${command[*]}" "$started" <<'PY'
import json, os, sys, platform, subprocess

root, out_path, command, started = sys.argv[1:5]

# The baseline of each group: (function id, same parameter?) -- ratios read "× baseline".
BASELINES = {
    "cstp_codec": ("memcpy_baseline", True),
    "cstp_stream": ("memcpy_baseline", True),
    "mca_signature": ("verify_signature", True),
    "chain_validation": ("one_p256_signature_baseline", False),
}
GROUPS = [
    ("cstp_codec", "CSTP codec: one data frame (64 B and 1400 B payloads)",
     "`encode_data`: `cstp::encode` of a data frame into a buffer; `decode_data`: `cstp::decode` "
     "of the frame plus copying the payload out. Baseline: `copy_from_slice` of the same frame bytes."),
    ("cstp_stream", "CSTP codec: a 64 KiB stream of 1400 B frames split across reads",
     "`frame_decoder`: `FrameDecoder::push` + `next_frame` until drained, payload copied out, "
     "with reads of 16 KiB (TLS-record sized) and 1000 B (almost every frame split across two reads). "
     "Baseline: copying the same stream in the same read sizes."),
    ("mca_signature", "MCA signature check (user certificate's signature over the challenge)",
     "`verify_signature`: what `vpn_core::mca` does for the signature — parse the user certificate, "
     "pick the algorithm, verify (RSA-2048 PKCS#1 v1.5 / ECDSA P-256, SHA-256) over the exact "
     "auth-request bytes. `verify_reply`: the whole MCA check of a parsed auth-reply — challenge "
     "store insert + take, machine-certificate fingerprint, PKCS#7 bag decode, signature. "
     "Ratio: × `verify_signature` of the same key type."),
    ("chain_validation", "Chain validation against a trustpoint (P-256 CAs)",
     "`TrustStore::validate` of a leaf issued by the root, and of a leaf issued by an intermediate "
     "(presented by the client) under the root; `build_trust_store`: `TrustStore::new` for one "
     "trustpoint (done once per configuration, not per login). Baseline: one bare ECDSA P-256 "
     "signature verification (`verify_signature`)."),
    ("aggauth_parsing", "Aggregate-auth XML parsing",
     "`ClientMessage::parse` of openconnect 9.01's `init` (protocol.md §8.1) and of an MCA "
     "auth-reply carrying an RSA-2048 user certificate in a PKCS#7 bag and its signature "
     "(64-column base64, shaped like protocol.md §2.5)."),
]

def load(group):
    rows = []
    gdir = os.path.join(root, group)
    for dirpath, _, files in os.walk(gdir):
        if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        rows.append({
            "function": bench["function_id"],
            "param": bench.get("value_str") or "",
            "throughput": bench.get("throughput"),
            "mean": est["mean"]["point_estimate"],
            "low": est["mean"]["confidence_interval"]["lower_bound"],
            "high": est["mean"]["confidence_interval"]["upper_bound"],
            "median": est["median"]["point_estimate"],
        })
    rows.sort(key=lambda r: (r["param"].zfill(8), r["function"] != BASELINES.get(group, ("",))[0], r["function"]))
    return rows

def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"

def fmt_rate(ns):
    per_s = 1e9 / ns
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f} M"
    if per_s >= 1e3:
        return f"{per_s / 1e3:.1f} k"
    return f"{per_s:.0f}"

def fmt_bytes_rate(throughput, ns):
    if not throughput or "Bytes" not in throughput:
        return ""
    gib = throughput["Bytes"] / (ns / 1e9) / 2**30
    return f"{gib:.2f} GiB/s"

all_rows = {}
lines = []
cpu = "unknown CPU"
try:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
except OSError:
    pass
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()

lines.append("# Micro-benchmarks (vpn-core, criterion)\n")
lines.append(f"Run {started} on {cpu} ({os.cpu_count()} CPUs visible, shared with other work: "
             f"figures are noisy), {rustc}, commit {commit}, bench profile (release: thin LTO, one codegen unit).\n")
lines.append("Command (from the repository root, as root or not):\n")
lines.append(f"```\nbench/micro.sh    # runs: {command}\n```\n")
lines.append("Times are criterion's mean per operation with its 95 % confidence interval; ops/s = 1 / mean. "
             "Sources: `vpn-core/benches/micro.rs`; raw estimates in `target/criterion/<group>/<benchmark>/new/estimates.json`. "
             "Certificates and keys are generated at start-up with `vpn_core::pki::testpki`.\n")

for group, title, what in GROUPS:
    rows = load(group)
    all_rows[group] = rows
    if not rows:
        lines.append(f"## {title}\n\nNo estimates found under {root}/{group}.\n")
        continue
    baseline_fn, same_param = BASELINES.get(group, (None, False))
    lines.append(f"## {title}\n")
    lines.append(what + "\n")
    lines.append("| benchmark | time per op (95 % CI) | ops/s | throughput | × baseline |")
    lines.append("|---|---:|---:|---:|---:|")
    for r in rows:
        name = r["function"] + (f"/{r['param']}" if r["param"] else "")
        ratio = ""
        if baseline_fn:
            base = [b for b in rows if b["function"] == baseline_fn and (not same_param or b["param"] == r["param"])]
            if base:
                ratio = "baseline" if r["function"] == baseline_fn else f"{r['mean'] / base[0]['mean']:.1f}"
        lines.append(f"| {name} | {fmt_time(r['mean'])} ({fmt_time(r['low'])} – {fmt_time(r['high'])}) | "
                     f"{fmt_rate(r['mean'])} | {fmt_bytes_rate(r['throughput'], r['mean'])} | {ratio} |")
    lines.append("")

def mean_of(group, function, param=""):
    for r in all_rows.get(group, []):
        if r["function"] == function and r["param"] == param:
            return r["mean"]
    return None

parts = {
    "parse init": mean_of("aggauth_parsing", "init"),
    "parse MCA auth-reply": mean_of("aggauth_parsing", "mca_auth_reply"),
    "verify_reply (RSA-2048 user key)": mean_of("mca_signature", "verify_reply", "rsa2048"),
    "machine chain (leaf → intermediate → root)": mean_of("chain_validation", "leaf_intermediate_root"),
    "user chain (leaf → intermediate → root)": mean_of("chain_validation", "leaf_intermediate_root"),
}
lines.append("## What this implies for \"≤ 2 ms server CPU per MCA login\"\n")
if all(v is not None for v in parts.values()):
    total = sum(parts.values())
    lines.append("The vpn-core work of one MCA login, from the figures above (the worst shapes measured: "
                 "RSA-2048 user key, both chains through an intermediate):\n")
    lines.append("| step | time |")
    lines.append("|---|---:|")
    for name, ns in parts.items():
        lines.append(f"| {name} | {fmt_time(ns)} |")
    lines.append(f"| **sum** | **{fmt_time(total)}** ({100 * total / 2e6:.0f} % of 2 ms) |")
    lines.append("")
    lines.append(
        "The rest of a login's server CPU is outside vpn-core and not in these figures: the TLS handshake "
        "with the machine certificate (an ECDHE key exchange, the server's signature, and verifying the "
        "client's CertificateVerify), HTTP parsing, generating the challenge, the session record and the "
        "tunnel setup. `bench/results/network.md` (bench/run.sh) measures the whole login from outside; "
        "the difference between its CPU per login and the sum above is that part.\n")
else:
    lines.append("Some of the needed estimates are missing; run the whole benchmark.\n")

with open(out_path, "w") as f:
    f.write("\n".join(lines))
print(f"wrote {out_path}", file=sys.stderr)
PY
