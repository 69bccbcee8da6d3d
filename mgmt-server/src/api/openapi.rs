//! `/api/openapi.json`, generated from the same route list that builds the router, so
//! the document cannot list a path the server does not serve, or miss one it does.

use serde_json::{Map, Value, json};

use super::RouteDoc;

pub fn document(routes: &[RouteDoc]) -> Value {
    let mut paths = Map::new();
    for route in routes {
        let entry = paths.entry(route.path.clone()).or_insert_with(|| json!({}));
        let parameters: Vec<Value> = path_parameters(&route.path)
            .into_iter()
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let mut operation = json!({
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": parameters,
            "responses": {
                "2XX": { "description": "Success (FMC JSON)" },
                "4XX": {
                    "description": "Refused; the body says why",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                }
            }
        });
        if route.path.starts_with("/api/fmc_config/") {
            operation["security"] = json!([{ "accessToken": [] }]);
        }
        if route.method == axum::http::Method::GET
            && !route.path.ends_with('}')
            && route.path.starts_with("/api/fmc_config/")
            && let Some(p) = operation["parameters"].as_array_mut()
        {
            for name in ["offset", "limit", "expanded", "filter"] {
                p.push(json!({ "name": name, "in": "query", "required": false, "schema": { "type": "string" } }));
            }
        }
        entry[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "mgmt-server REST API (FMC-compatible)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Paths, envelopes and field names follow Cisco FMC's API; log in at /api/fmc_platform/v1/auth/generatetoken and send X-auth-access-token. Where we differ: pool overrides (object/ipv4addresspools/{id}/overrides, object/ipv6addresspools/{id}/overrides, body {ipAddressRange, mask | ipv6StartAddress, numberOfAddresses, overrides: {target: {id, type: Device}}}) are objects of their own (POST, PUT, DELETE), where FMC writes them through the parent object; devices/devicerecords/{id}/certificates lists the identity certificate each device has per cert enrollment (issued by the internal CA for INTERNAL_CA enrollments) and installs one for a manual or PKCS12 enrollment with POST {certEnrollment: {id}, identityCertificate: {certificateChainPem, privateKeyPem}} (FMC: Devices > Certificates); administrators are our extension, as FMC has no users API: users/users (GET, POST {name, password, role, enabled}), users/users/{id} (GET, PUT with any of {role, enabled, password}, DELETE; only the Administrator role changes them, and the last enabled Administrator cannot be disabled, demoted or deleted), and POST /api/fmc_platform/v1/auth/changepassword {currentPassword, newPassword} for one's own password. A throttled generatetoken answers 429 with Retry-After (too many failed logins from the address, or for the name from the address). Connection profiles (policy/ravpns/{id}/connectionprofiles) carry extension fields: machineCertificateTrustpoints and userCertificateTrustpoints (lists of CertEnrollment references, each one of the profile's trustpoints: the CAs that may issue the machine certificate of the TLS handshake and the user certificate of multiple certificate authentication; absent or empty, a slot accepts every trustpoint of the profile, as FMC does), and, in answers, warnings (read-only, [{field, description}]: e.g. multiple certificate authentication on while the two slots are not separated)."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "accessToken": { "type": "apiKey", "in": "header", "name": "X-auth-access-token" }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {
                                "category": { "type": "string" },
                                "severity": { "type": "string" },
                                "messages": { "type": "array", "items": { "type": "object", "properties": { "description": { "type": "string" } } } }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn path_parameters(path: &str) -> Vec<String> {
    path.split('/')
        .filter_map(|part| part.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}
