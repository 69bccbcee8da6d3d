#!/usr/bin/env python3
"""Creates the seed scenario through the manager's REST API (Python standard library only)
and deploys it: the pool, group policy, machine and user CA trustpoints, a headend identity
issued by the manager's internal CA, the device (registered with its one-time key), the RA
VPN policy and the MCA connection profile `RA-VPN-Multi-Cert`. Idempotent: what exists (by
name) is reused, so running the demo again reuses its data. Prints a JSON summary."""

import argparse
import base64
import json
import ssl
import sys
import time
import urllib.error
import urllib.request

GLOBAL = "e276abec-e0f2-11e3-8169-6d9ed49b625f"


class Api:
    def __init__(self, base, cafile, user, password):
        self.base = base
        self.context = ssl.create_default_context(cafile=cafile)
        self.token = None
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        answer = self.request("POST", "/api/fmc_platform/v1/auth/generatetoken", headers={"Authorization": f"Basic {basic}"}, raw=True)
        self.token = answer.headers["X-auth-access-token"]

    def request(self, method, path, body=None, headers=None, raw=False):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("X-auth-access-token", self.token)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            answer = urllib.request.urlopen(request, context=self.context, timeout=60)
        except urllib.error.HTTPError as error:
            sys.exit(f"{method} {path} failed ({error.code}): {error.read().decode(errors='replace')}")
        if raw:
            return answer
        text = answer.read()
        return json.loads(text) if text else {}

    def config(self, method, path, body=None):
        return self.request(method, f"/api/fmc_config/v1/domain/{GLOBAL}{path}", body)

    def ensure(self, path, body):
        """The object named body["name"] under path, created if absent."""
        listed = self.config("GET", f"{path}?limit=1000&expanded=true")
        for item in listed.get("items", []):
            if item["name"] == body["name"]:
                return item
        return self.config("POST", path, body)


def read(path):
    with open(path, encoding="ascii") as f:
        return f.read()


def wait(what, check, limit=120):
    deadline = time.time() + limit
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.5)


def main():
    p = argparse.ArgumentParser()
    for name in ("url", "cafile", "username", "password", "machine-ca", "user-ca", "device-host", "reg-key", "vpn-name"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--ssl-port", type=int, default=443)
    p.add_argument("--split-include", default="")
    p.add_argument("--nat-id", default="")
    args = p.parse_args()
    api = Api(args.url, args.cafile, args.username, args.password)

    pool = api.ensure("/object/ipv4addresspools", {"name": "RAVPN-MultiCert-Pool", "type": "IPv4AddressPool", "ipAddressRange": "192.168.77.10-192.168.77.250", "mask": "255.255.255.0"})
    split = [n for n in args.split_include.split(",") if n]
    gp_body = {"name": "RAVPN-Multi-Cert-GP", "type": "GroupPolicy", "generalSettings": {"banner": "MCA demo: machine and user certificates checked"}}
    if split:
        gp_body["generalSettings"]["splitTunnelSettings"] = {"ipv4SplitTunnelPolicy": "TUNNEL_SPECIFIED", "splitTunnelNetworks": split}
    gp = api.ensure("/object/grouppolicies", gp_body)
    machine_ca = api.ensure("/object/certenrollments", {"name": "ftd-machine-ca", "type": "CertEnrollment", "enrollmentType": "MANUAL", "caCertificate": {"caOnly": True, "base64Content": read(args.machine_ca)}})
    user_ca = api.ensure("/object/certenrollments", {"name": "ftd-user-ca", "type": "CertEnrollment", "enrollmentType": "MANUAL", "caCertificate": {"caOnly": True, "base64Content": read(args.user_ca)}})
    identity = api.ensure("/object/certenrollments", {"name": "ftd-vpn-identity", "type": "CertEnrollment", "enrollmentType": "INTERNAL_CA", "certificateParameters": {"commonName": args.vpn_name}})
    device_body = {"name": "FTD-Demo", "type": "Device", "hostName": args.device_host, "regKey": args.reg_key}
    if args.nat_id:
        device_body["natID"] = args.nat_id
    device = api.ensure("/devices/devicerecords", device_body)
    device = wait("the sensor to register", lambda: (lambda d: d if d["registrationStatus"] != "PENDING" else None)(api.config("GET", f"/devices/devicerecords/{device['id']}")))
    if device["registrationStatus"] != "REGISTERED":
        sys.exit(f"the sensor did not register: {device.get('registrationError')}")
    policy = api.ensure("/policy/ravpns", {
        "name": "RAVPN-MCA", "type": "RAVpn",
        "accessInterfaceSettings": {"webPort": args.ssl_port, "enableDTLS": False, "sslIdCertificate": {"id": identity["id"]}},
        "targetDevices": [{"id": device["id"], "type": "Device"}],
    })
    api.ensure(f"/policy/ravpns/{policy['id']}/connectionprofiles", {
        "name": "RA-VPN-Multi-Cert", "type": "RaVpnConnectionProfile",
        "groupPolicy": {"id": gp["id"]},
        "ipv4AddressPool": [{"id": pool["id"]}],
        "trustpoints": [{"id": machine_ca["id"]}, {"id": user_ca["id"]}],
        # Our extension (MCA slot binding): the machine CA issues the machine certificate, the
        # user CA the user certificate; without it either slot accepts either CA.
        "machineCertificateTrustpoints": [{"id": machine_ca["id"]}],
        "userCertificateTrustpoints": [{"id": user_ca["id"]}],
        "authenticationMethod": "CLIENT_CERTIFICATE_ONLY",
        "enableMultipleCertificateAuthentication": True,
        "certificateUsernameSettings": {"usernameFromCertificateSource": "SECOND_CERTIFICATE", "mapPrimaryField": "CN_COMMMON_NAME", "mapSecondaryField": "NONE"},
        "groupAlias": [{"aliasName": "RAVPN-MultiCert", "enabled": True}],
    })
    deployable = [d for d in api.config("GET", "/deployment/deployabledevices?expanded=true").get("items", []) if d["device"]["id"] == device["id"]]
    job = None
    if deployable:
        if deployable[0]["problems"]:
            sys.exit("the configuration does not validate:\n" + "\n".join(deployable[0]["problems"]))
        request = api.config("POST", "/deployment/deploymentrequests", {"type": "DeploymentRequest", "version": deployable[0]["version"], "deviceList": [device["id"]], "deploymentNote": "demo"})
        task = request["metadata"]["task"]["id"]
        wait("the deployment", lambda: api.config("GET", f"/job/taskstatuses/{task}")["status"] != "Deploying")
        jobs = api.config("GET", f"/deployment/jobhistories?filter=deviceUUID:{device['id']}&limit=1")
        job = jobs["items"][0]
        if job["status"] != "DEPLOYED":
            sys.exit(f"the deployment failed: {job.get('message')}")
    print(json.dumps({"device": device["id"], "deployed": job is not None, "job": job and job["name"]}))


if __name__ == "__main__":
    main()
