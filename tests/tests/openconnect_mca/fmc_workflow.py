#!/usr/bin/env python3
"""The seed workflow through the manager's FMC-shaped REST API, driven by the real FMC
client fireREST (PyPI). Called by the Rust test `fmc_workflow.rs` in two phases:

  setup     log in, create the pool, the group policy, two CA trustpoints and the
            headend identity, the RA VPN policy with the seed's MCA connection profile,
            register the sensor (devicerecords), deploy and wait for the job; prints
            a JSON summary on stdout.
  sessions  list the RA VPN sessions, check the MCA session, terminate it by user;
            prints a JSON summary.
"""

import argparse
import json
import sys
import time

from fireREST import FMC


def connect(args):
    return FMC(
        hostname=args.host,
        username=args.username,
        password=args.password,
        domain="Global",
        protocol="https",
        verify_cert=args.cafile,
        timeout=60,
    )


def read(path):
    with open(path, encoding="ascii") as f:
        return f.read()


def wait(what, check, limit=90):
    deadline = time.time() + limit
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.5)


def setup(fmc, args):
    pool = fmc.object.ipv4addresspool.create(
        {
            "name": "RAVPN-MultiCert-Pool",
            "type": "IPv4AddressPool",
            "ipAddressRange": "192.168.77.10-192.168.77.250",
            "mask": "255.255.255.0",
        }
    ).json()
    group_policy = fmc.object.grouppolicy.create(
        {
            "name": "RAVPN-Multi-Cert-GP",
            "type": "GroupPolicy",
            "enableSSLProtocol": True,
            "generalSettings": {
                "splitTunnelSettings": {
                    "ipv4SplitTunnelPolicy": "TUNNEL_SPECIFIED",
                    "splitTunnelNetworks": args.split_include.split(","),
                }
            },
            "advancedSettings": {"sessionSettings": {"simultaneousLoginPerUser": 25}},
        }
    ).json()
    trustpoints = []
    for name, path in (("ftd-machine-ca", args.machine_ca), ("ftd-user-ca", args.user_ca)):
        trustpoints.append(
            fmc.object.certenrollment.create(
                {
                    "name": name,
                    "type": "CertEnrollment",
                    "enrollmentType": "MANUAL",
                    "caCertificate": {"caOnly": True, "base64Content": read(path)},
                    "validationUsage": {"sslClient": True, "ipsecClient": False, "sslServer": False},
                }
            ).json()
        )
    identity = fmc.object.certenrollment.create(
        {
            "name": "ftd-vpn-identity",
            "type": "CertEnrollment",
            "enrollmentType": "MANUAL",
            "identityCertificate": {
                "certificateChainPem": read(args.identity_chain),
                "privateKeyPem": read(args.identity_key),
            },
        }
    ).json()
    device = fmc.device.devicerecord.create(
        {
            "name": "FTD-Seed",
            "type": "Device",
            "hostName": args.device_host,
            "regKey": args.reg_key,
            "license_caps": ["SECURE_CLIENT_PREMIER"],
        }
    ).json()
    device_id = device["id"]
    registered = wait(
        "the device to register",
        lambda: (lambda d: d if d.get("registrationStatus") in ("REGISTERED", "FAILED") else None)(
            fmc.device.devicerecord.get(uuid=device_id)
        ),
    )
    if registered.get("registrationStatus") != "REGISTERED":
        sys.exit(f"registration failed: {registered}")
    policy = fmc.policy.ravpn.create(
        {
            "name": "RAVPN-MCA",
            "type": "RAVpn",
            "configureSSL": True,
            "configureIpsec": False,
            "accessInterfaceSettings": {
                "webPort": args.ssl_port,
                "dtlsPort": args.ssl_port,
                "allowConnectionProfileSelection": True,
                "sslIdCertificate": {"id": identity["id"], "type": "CertEnrollment"},
                "interfaceSettings": [{"enableSSL": True, "enableDTLS": False}],
            },
            "targetDevices": [{"id": device_id, "type": "Device"}],
        }
    ).json()
    profile = fmc.policy.ravpn.connectionprofile.create(
        {
            "name": "RA-VPN-Multi-Cert",
            "type": "RaVpnConnectionProfile",
            "groupPolicy": {"id": group_policy["id"], "type": "GroupPolicy"},
            "ipv4AddressPool": [{"id": pool["id"], "type": "IPv4AddressPool"}],
            "authenticationMethod": "CLIENT_CERTIFICATE_ONLY",
            "enableMultipleCertificateAuthentication": True,
            "certificateUsernameSettings": {
                "usernameFromCertificateSource": "SECOND_CERTIFICATE",
                "mapPrimaryField": "CN_COMMMON_NAME",
                "mapSecondaryField": "NONE",
                "mapEntireDNAsUsername": False,
            },
            "trustpoints": [{"id": t["id"], "type": "CertEnrollment"} for t in trustpoints],
            "groupAlias": [{"aliasName": "RAVPN-MultiCert", "enabled": True}],
        },
        container_uuid=policy["id"],
    ).json()
    deployable = fmc.deployment.deployabledevices.get()
    mine = [d for d in deployable if d["device"]["id"] == device_id]
    if not mine:
        sys.exit(f"the device has no pending changes: {deployable}")
    request = fmc.deployment.deploymentrequest.create(
        {
            "type": "DeploymentRequest",
            "version": mine[0]["version"],
            "forceDeploy": False,
            "ignoreWarning": True,
            "deviceList": [device_id],
            "deploymentNote": "seed scenario from fireREST",
        }
    )
    job = wait(
        "the deployment",
        lambda: next(
            (
                j
                for j in fmc.deployment.jobhistory.get()
                if j.get("deviceList", [{}])[0].get("deviceUUID") == device_id
                and j.get("status") in ("DEPLOYED", "FAILED")
            ),
            None,
        ),
    )
    print(
        json.dumps(
            {
                "device": device_id,
                "policy": policy["id"],
                "profile": profile["id"],
                "deploymentStatus": request.status_code,
                "job": job,
            }
        )
    )


def sessions(fmc, args):
    listed = fmc.health.ravpnsession.get()
    mine = [s for s in listed if s.get("username") == "client.example.com"]
    if len(mine) != 1:
        sys.exit(f"expected one session of client.example.com: {listed}")
    answer = fmc.health.ravpnsession.terminate(
        {
            "type": "RaVpnSessionTerminateRequest",
            "terminateBy": "USER",
            "usernames": ["client.example.com"],
            "deviceId": mine[0]["device"]["id"],
        }
    )
    print(json.dumps({"session": mine[0], "terminate": answer.json()}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=("setup", "sessions"))
    parser.add_argument("--host", required=True)
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--cafile", required=True)
    parser.add_argument("--machine-ca")
    parser.add_argument("--user-ca")
    parser.add_argument("--identity-chain")
    parser.add_argument("--identity-key")
    parser.add_argument("--device-host")
    parser.add_argument("--reg-key")
    parser.add_argument("--ssl-port", type=int)
    parser.add_argument("--split-include", default="")
    args = parser.parse_args()
    fmc = connect(args)
    if args.phase == "setup":
        setup(fmc, args)
    else:
        sessions(fmc, args)


if __name__ == "__main__":
    main()
