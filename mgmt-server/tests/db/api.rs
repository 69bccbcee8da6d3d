//! The REST API: the real router on a loopback port, a throw-away database, reqwest.

use std::net::SocketAddr;

use mgmt_server::api::{self, ApiContext};
use mgmt_server::db::admins::{self, AdministratorInput, Role};
use mgmt_server::db::audit::{self, AuditAction, AuditFilter};
use mgmt_server::db::{Actor, EncryptionKey, GLOBAL_DOMAIN_ID, Page, PasswordHash};
use mgmt_server::services::Services;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::support;

pub(crate) const PASSWORD: &str = "Sup3r-secret!";

/// The API served on 127.0.0.1, with an Administrator `admin` and a Read-Only `viewer`.
pub(crate) struct Api {
    pub(crate) base: String,
    pub(crate) pool: PgPool,
    key: EncryptionKey,
    pub(crate) http: reqwest::Client,
}

impl Api {
    pub(crate) async fn start() -> Self {
        Self::start_with_rate(1000).await
    }

    async fn start_with_rate(requests_per_minute: u32) -> Self {
        let pool = support::fresh_database().await;
        let key = EncryptionKey::generate().unwrap();
        let mut conn = pool.acquire().await.unwrap();
        for (name, role) in [("admin", Role::Administrator), ("viewer", Role::ReadOnly)] {
            admins::create(
                &mut conn,
                &Actor::system(),
                GLOBAL_DOMAIN_ID,
                &AdministratorInput {
                    name: name.to_owned(),
                    password_hash: PasswordHash::new(PASSWORD).unwrap(),
                    role,
                    enabled: true,
                },
            )
            .await
            .unwrap();
        }
        Self::serve(pool, key, requests_per_minute).await
    }

    /// A CA-only trustpoint `name` (a fresh self-signed CA), made through the repository.
    pub(crate) async fn ca_trustpoint(&self, name: &str) -> Uuid {
        support::ca_trustpoint(&self.pool, &self.key, name).await
    }

    /// Another manager replica on the same database (and the same secret key).
    async fn replica(&self, requests_per_minute: u32) -> Self {
        Self::serve(self.pool.clone(), self.key.clone(), requests_per_minute).await
    }

    async fn serve(pool: PgPool, key: EncryptionKey, requests_per_minute: u32) -> Self {
        let services = Services::start(pool.clone(), key.clone(), "fmc-test")
            .await
            .unwrap();
        let router = api::router(ApiContext::new(
            pool.clone(),
            services,
            key.clone(),
            requests_per_minute,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Self {
            base: format!("http://{address}"),
            pool,
            key,
            http: reqwest::Client::new(),
        }
    }

    fn config(&self, path: &str) -> String {
        format!(
            "{}/api/fmc_config/v1/domain/{GLOBAL_DOMAIN_ID}{path}",
            self.base
        )
    }

    pub(crate) async fn login(&self, user: &str) -> String {
        let answer = self
            .http
            .post(format!(
                "{}/api/fmc_platform/v1/auth/generatetoken",
                self.base
            ))
            .basic_auth(user, Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::NO_CONTENT);
        answer.headers()["X-auth-access-token"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    pub(crate) async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request = self
            .http
            .request(method, self.config(path))
            .header("X-auth-access-token", token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        let status = answer.status();
        let headers = answer.headers().clone();
        let text = answer.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        )
    }
}

pub(crate) fn messages(body: &Value) -> String {
    body["error"]["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|d| d["description"].as_str().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

pub(crate) fn pool_body(name: &str) -> Value {
    json!({ "name": name, "type": "IPv4AddressPool", "ipAddressRange": "10.10.0.10-10.10.0.20", "mask": "255.255.255.0" })
}

#[tokio::test]
async fn login_gives_fmc_token_headers_and_every_failure_is_audited() {
    let api = Api::start().await;
    let answer = api
        .http
        .post(format!(
            "{}/api/fmc_platform/v1/auth/generatetoken",
            api.base
        ))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    let headers = answer.headers();
    for name in [
        "X-auth-access-token",
        "X-auth-refresh-token",
        "DOMAIN_UUID",
        "DOMAINS",
    ] {
        assert!(headers.contains_key(name), "{name} missing");
    }
    let domains: Value = serde_json::from_str(headers["DOMAINS"].to_str().unwrap()).unwrap();
    assert_eq!(domains[0]["name"], "Global");
    assert_eq!(domains[0]["uuid"], GLOBAL_DOMAIN_ID.to_string());

    let wrong = api
        .http
        .post(format!(
            "{}/api/fmc_platform/v1/auth/generatetoken",
            api.base
        ))
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let filter = AuditFilter {
        action: Some(AuditAction::LoginFailed),
        ..AuditFilter::default()
    };
    let failed = audit::list(&api.pool, &filter, Page::DEFAULT)
        .await
        .unwrap();
    assert_eq!(failed.total, 1);
    let filter = AuditFilter {
        action: Some(AuditAction::Login),
        ..AuditFilter::default()
    };
    assert_eq!(
        audit::list(&api.pool, &filter, Page::DEFAULT)
            .await
            .unwrap()
            .total,
        1
    );
}

#[tokio::test]
async fn a_missing_or_refreshed_token_is_invalid_and_the_refresh_token_gives_new_ones() {
    let api = Api::start().await;
    let (status, body, _) = api
        .call("", reqwest::Method::GET, "/object/ipv4addresspools", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(messages(&body).contains("Access token invalid"), "{body}");

    let login = api
        .http
        .post(format!(
            "{}/api/fmc_platform/v1/auth/generatetoken",
            api.base
        ))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    let access = login.headers()["X-auth-access-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let refresh = login.headers()["X-auth-refresh-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let renewed = api
        .http
        .post(format!(
            "{}/api/fmc_platform/v1/auth/refreshtoken",
            api.base
        ))
        .header("X-auth-access-token", &access)
        .header("X-auth-refresh-token", &refresh)
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), StatusCode::NO_CONTENT);
    let new_access = renewed.headers()["X-auth-access-token"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_access, access);
    let (old, _, _) = api
        .call(
            &access,
            reqwest::Method::GET,
            "/object/ipv4addresspools",
            None,
        )
        .await;
    assert_eq!(old, StatusCode::UNAUTHORIZED);
    let (new, _, _) = api
        .call(
            &new_access,
            reqwest::Method::GET,
            "/object/ipv4addresspools",
            None,
        )
        .await;
    assert_eq!(new, StatusCode::OK);
}

#[tokio::test]
async fn a_read_only_administrator_reads_but_cannot_change_anything() {
    let api = Api::start().await;
    let token = api.login("viewer").await;
    let (status, _, _) = api
        .call(
            &token,
            reqwest::Method::GET,
            "/object/ipv4addresspools",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/object/ipv4addresspools",
            Some(pool_body("P")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(messages(&body).contains("Read-Only"), "{body}");
}

#[tokio::test]
async fn pools_are_created_listed_with_paging_links_updated_and_deleted() {
    let api = Api::start().await;
    let token = api.login("admin").await;
    for name in ["POOL-A", "POOL-B", "POOL-C"] {
        let (status, body, _) = api
            .call(
                &token,
                reqwest::Method::POST,
                "/object/ipv4addresspools",
                Some(pool_body(name)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["type"], "IPv4AddressPool");
        assert_eq!(body["ipAddressRange"], "10.10.0.10-10.10.0.20");
    }
    let (_, page, _) = api
        .call(
            &token,
            reqwest::Method::GET,
            "/object/ipv4addresspools?limit=2&expanded=True",
            None,
        )
        .await;
    assert_eq!(page["paging"]["count"], 3);
    assert_eq!(page["paging"]["pages"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        page["items"][0]["mask"], "255.255.255.0",
        "expanded items are full objects"
    );
    let next = page["paging"]["next"][0].as_str().unwrap();
    assert!(
        next.starts_with("https://127.0.0.1:") && next.contains("offset=2"),
        "{next}"
    );
    let next_path = next.split_once(&GLOBAL_DOMAIN_ID.to_string()).unwrap().1;
    let (_, second, _) = api
        .call(&token, reqwest::Method::GET, next_path, None)
        .await;
    assert_eq!(second["items"][0]["name"], "POOL-C");

    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, one, headers) = api
        .call(
            &token,
            reqwest::Method::GET,
            &format!("/object/ipv4addresspools/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(one.get("paging").is_none());
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let mut changed = one.clone();
    changed["ipAddressRange"] = json!("10.10.0.30-10.10.0.40");
    let (status, updated, _) = api
        .call(
            &token,
            reqwest::Method::PUT,
            &format!("/object/ipv4addresspools/{id}"),
            Some(changed),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["ipAddressRange"], "10.10.0.30-10.10.0.40");

    // A stale If-Match: 412 and nothing written.
    let mut stale = updated.clone();
    stale["ipAddressRange"] = json!("10.10.0.50-10.10.0.60");
    let answer = api
        .http
        .put(api.config(&format!("/object/ipv4addresspools/{id}")))
        .header("X-auth-access-token", &token)
        .header("If-Match", &etag)
        .json(&stale)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::PRECONDITION_FAILED);
    let (_, after, _) = api
        .call(
            &token,
            reqwest::Method::GET,
            &format!("/object/ipv4addresspools/{id}"),
            None,
        )
        .await;
    assert_eq!(after["ipAddressRange"], "10.10.0.30-10.10.0.40");

    let (status, _, _) = api
        .call(
            &token,
            reqwest::Method::DELETE,
            &format!("/object/ipv4addresspools/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = api
        .call(
            &token,
            reqwest::Method::GET,
            &format!("/object/ipv4addresspools/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bad_request_names_every_wrong_field_and_changes_nothing() {
    let api = Api::start().await;
    let token = api.login("admin").await;
    let (status, body, _) = api
        .call(&token, reqwest::Method::POST, "/object/ipv4addresspools", Some(json!({ "name": "BAD", "ipAddressRange": "10.0.0.20-10.0.0.10", "mask": "255.0.255.0" })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = messages(&body);
    assert!(
        text.contains("ipAddressRange: the pool starts at 10.0.0.20, after its end 10.0.0.10"),
        "{text}"
    );
    assert!(
        text.contains("mask: 255.0.255.0 is not a valid netmask: its one bits are not contiguous"),
        "{text}"
    );
    let (_, list, _) = api
        .call(
            &token,
            reqwest::Method::GET,
            "/object/ipv4addresspools",
            None,
        )
        .await;
    assert_eq!(list["paging"]["count"], 0);
    let (status, body, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/object/ipv4addresspools",
            Some(pool_body("DUP")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/object/ipv4addresspools",
            Some(pool_body("DUP")),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(messages(&body).contains("Duplicate Name"), "{body}");
}

/// A CA certificate (PEM) made with rcgen.
fn ca_pem(name: &str) -> String {
    support::certificate(name).0
}

#[tokio::test]
async fn the_seed_mca_connection_profile_round_trips_with_fmc_field_names() {
    let api = Api::start().await;
    let token = api.login("admin").await;
    let post = async |path: &str, body: Value| {
        let (status, body, _) = api
            .call(&token, reqwest::Method::POST, path, Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {body}");
        body
    };
    let pool = post("/object/ipv4addresspools", json!({ "name": "RAVPN-MultiCert-Pool", "ipAddressRange": "192.168.77.10-192.168.77.250", "mask": "255.255.255.0" })).await;
    let gp = post("/object/grouppolicies", json!({ "name": "RAVPN-Multi-Cert-GP", "generalSettings": { "banner": "Authorized use only" } })).await;
    assert_eq!(gp["anyConnectSettings"]["sslSettings"]["mtuSize"], 1406);
    let machine = post("/object/certenrollments", json!({ "name": "ftd-machine-ca", "enrollmentType": "MANUAL", "caCertificate": { "caOnly": true, "base64Content": ca_pem("machine-ca") } })).await;
    let user = post("/object/certenrollments", json!({ "name": "ftd-user-ca", "enrollmentType": "MANUAL", "caCertificate": { "caOnly": true, "base64Content": ca_pem("user-ca") } })).await;
    assert_eq!(user["certificates"][0]["subject"], "CN=user-ca");
    let identity = post("/object/certenrollments", json!({ "name": "ftd-vpn-identity", "enrollmentType": "INTERNAL_CA", "certificateParameters": { "commonName": "vpn.example.com" } })).await;
    assert!(!identity.to_string().contains("PRIVATE KEY"));
    let policy = post("/policy/ravpns", json!({
        "name": "RAVPN-MCA",
        "accessInterfaceSettings": { "webPort": 443, "sslIdCertificate": { "id": identity["id"] } }
    })).await;
    let profile = json!({
        "name": "RA-VPN-Multi-Cert",
        "groupPolicy": { "id": gp["id"] },
        "ipv4AddressPool": [{ "id": pool["id"] }],
        "trustpoints": [{ "id": machine["id"] }, { "id": user["id"] }],
        "authenticationMethod": "CLIENT_CERTIFICATE_ONLY",
        "enableMultipleCertificateAuthentication": true,
        "certificateUsernameSettings": {
            "usernameFromCertificateSource": "SECOND_CERTIFICATE",
            "mapPrimaryField": "CN_COMMMON_NAME",
            "mapSecondaryField": "OU_ORGANISATIONAL_UNIT",
            "mapEntireDNAsUsername": false
        },
        "groupAlias": [{ "aliasName": "RAVPN-MultiCert", "enabled": true }]
    });
    let path = format!(
        "/policy/ravpns/{}/connectionprofiles",
        policy["id"].as_str().unwrap()
    );
    let created = post(&path, profile).await;
    let (_, read, _) = api
        .call(
            &token,
            reqwest::Method::GET,
            &format!("{path}/{}", created["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(read["authenticationMethod"], "CLIENT_CERTIFICATE_ONLY");
    assert_eq!(read["enableMultipleCertificateAuthentication"], true);
    assert_eq!(
        read["certificateUsernameSettings"]["usernameFromCertificateSource"],
        "SECOND_CERTIFICATE"
    );
    assert_eq!(
        read["certificateUsernameSettings"]["mapPrimaryField"],
        "CN_COMMMON_NAME"
    );
    assert_eq!(
        read["certificateUsernameSettings"]["mapSecondaryField"],
        "OU_ORGANISATIONAL_UNIT"
    );
    assert_eq!(read["groupPolicy"]["name"], "RAVPN-Multi-Cert-GP");
    assert_eq!(read["groupAlias"][0]["aliasName"], "RAVPN-MultiCert");
    assert_eq!(read["trustpoints"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_aaa_tab_rules_refuse_impossible_combinations_with_the_field_named() {
    let api = Api::start().await;
    let token = api.login("admin").await;
    let (_, policy, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/policy/ravpns",
            Some(json!({ "name": "P" })),
        )
        .await;
    let (_, gp, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/object/grouppolicies",
            Some(json!({ "name": "GP" })),
        )
        .await;
    let (_, pool, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/object/ipv4addresspools",
            Some(pool_body("POOL")),
        )
        .await;
    let path = format!(
        "/policy/ravpns/{}/connectionprofiles",
        policy["id"].as_str().unwrap()
    );
    let (status, body, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            &path,
            Some(json!({
                "name": "BAD",
                "groupPolicy": { "id": gp["id"] },
                "ipv4AddressPool": [{ "id": pool["id"] }],
                "authenticationMethod": "AAA_ONLY",
                "enableMultipleCertificateAuthentication": true,
                "certificateUsernameSettings": { "hideUsername": true }
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = messages(&body);
    assert!(
        text.contains("enableMultipleCertificateAuthentication: multiple certificate authentication needs a certificate authentication method, not AAA Only"),
        "{text}"
    );
    assert!(
        text.contains(
            "certificateUsernameSettings.hideUsername: hide username needs prefill username from certificate to be on"
        ),
        "{text}"
    );
    let (_, list, _) = api.call(&token, reqwest::Method::GET, &path, None).await;
    assert_eq!(list["paging"]["count"], 0);
}

#[tokio::test]
async fn a_client_that_goes_too_fast_gets_429_with_retry_after() {
    let api = Api::start_with_rate(5).await;
    wait_inside_a_minute(&api.pool).await;
    let mut last = None;
    for _ in 0..6 {
        last = Some(
            api.http
                .get(format!(
                    "{}/api/fmc_platform/v1/info/serverversion",
                    api.base
                ))
                .send()
                .await
                .unwrap(),
        );
    }
    let last = last.unwrap();
    assert_eq!(last.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = last.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1);
}

#[tokio::test]
async fn a_stopped_database_answers_503_and_the_same_request_succeeds_once_it_is_back() {
    use mgmt_server::db::cluster::Cluster;
    use mgmt_server::db::roles::{self, APPLICATION_ROLE, OWNER_ROLE};
    let root = tempfile::Builder::new()
        .prefix("pg-")
        .tempdir_in(support::scratch_base())
        .unwrap();
    let cluster = Cluster::start_for_tests(root.path()).await.unwrap();
    cluster.create_database("mgmt").await.unwrap();
    cluster.provision_roles("mgmt").await.unwrap();
    let pool = roles::connect_as_application(
        Some(cluster.connect_options_as("mgmt", OWNER_ROLE)),
        cluster.connect_options_as("mgmt", APPLICATION_ROLE),
        4,
    )
    .await
    .unwrap();
    admins::create(
        &mut pool.acquire().await.unwrap(),
        &Actor::system(),
        GLOBAL_DOMAIN_ID,
        &AdministratorInput {
            name: "admin".to_owned(),
            password_hash: PasswordHash::new(PASSWORD).unwrap(),
            role: Role::Administrator,
            enabled: true,
        },
    )
    .await
    .unwrap();
    let api = Api::serve(pool, EncryptionKey::generate().unwrap(), 1000).await;
    let token = api.login("admin").await;
    let (status, _, _) = api
        .call(
            &token,
            reqwest::Method::GET,
            "/object/ipv4addresspools",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    cluster.stop().unwrap();
    let (status, body, headers) = api
        .call(
            &token,
            reqwest::Method::GET,
            "/object/ipv4addresspools",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert!(
        body["error"]["messages"][0]["description"]
            .as_str()
            .unwrap()
            .contains("database is unavailable"),
        "{body}"
    );

    let _cluster = Cluster::start_for_tests(root.path()).await.unwrap();
    let (status, body, _) = api
        .call(
            &token,
            reqwest::Method::GET,
            "/object/ipv4addresspools",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_simultaneous_login_rule_is_the_group_policy_services_zero_means_nobody() {
    let api = Api::start().await;
    let token = api.login("admin").await;
    let body = |name: &str, logins: u64| json!({ "name": name, "advancedSettings": { "sessionSettings": { "simultaneousLoginPerUser": logins } } });
    // 0 is FMC's "nobody may log in": accepted, as the web UI now accepts it too (both
    // doors call objects::group_policies, whose unit tests hold the rule).
    let (status, created, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/object/grouppolicies",
            Some(body("GP-0", 0)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["advancedSettings"]["sessionSettings"]["simultaneousLoginPerUser"],
        0
    );
    let (status, refused, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/object/grouppolicies",
            Some(body("GP-BIG", 2_147_483_648)),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused.to_string().contains(
            "advancedSettings.sessionSettings.simultaneousLoginPerUser: 2147483648 logins is outside the allowed range 0–2147483647 logins"
        ),
        "{refused}"
    );
    let input = {
        let mut input = mgmt_server::db::group_policies::GroupPolicyInput::new("GP-UI");
        input.simultaneous_logins = 2_147_483_648;
        input
    };
    let problems = mgmt_server::objects::group_policies::check(&input);
    assert_eq!(problems.len(), 1);
    assert!(refused.to_string().contains(&problems[0].message));
}

/// Requests are counted per minute of the database's clock: start well inside one, so
/// a test's few requests all fall into the same window.
async fn wait_inside_a_minute(pool: &PgPool) {
    let second: f64 = sqlx::query_scalar("SELECT extract(second FROM now())::float8")
        .fetch_one(pool)
        .await
        .unwrap();
    if second > 50.0 {
        tokio::time::sleep(std::time::Duration::from_secs_f64(61.0 - second)).await;
    }
}

#[tokio::test]
async fn the_request_limit_is_counted_across_replicas() {
    let a = Api::start_with_rate(5).await;
    let b = a.replica(5).await;
    wait_inside_a_minute(&a.pool).await;
    let mut statuses = Vec::new();
    for api in [&a, &b, &a, &b, &a, &b] {
        let answer = api
            .http
            .get(format!(
                "{}/api/fmc_platform/v1/info/serverversion",
                api.base
            ))
            .send()
            .await
            .unwrap();
        statuses.push(answer.status());
    }
    // Five from 127.0.0.1 in the minute, whichever replica answered; the sixth waits.
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn refused_logins_throttle_the_name_from_that_address_on_both_doors_and_every_replica_only() {
    let a = Api::start().await;
    let b = a.replica(1000).await;
    let here: Option<std::net::IpAddr> = Some("127.0.0.1".parse().unwrap());
    let elsewhere: Option<std::net::IpAddr> = Some("192.0.2.77".parse().unwrap());
    let generate = |api: &Api, user: &str, password: &str| {
        api.http
            .post(format!(
                "{}/api/fmc_platform/v1/auth/generatetoken",
                api.base
            ))
            .basic_auth(user, Some(password))
            .send()
    };
    // A token issued by one replica works on the other.
    let token = a.login("viewer").await;
    let (status, _, _) = b
        .call(
            &token,
            reqwest::Method::GET,
            "/object/ipv4addresspools",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Four wrong passwords over REST, spread over both replicas, one in the web UI's
    // door, all from this address.
    for api in [&a, &b, &a, &b] {
        let answer = generate(api, "admin", "wrong-password").await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
    let ui = mgmt_server::admins::authenticate(
        &a.pool,
        "Admin",
        "also-wrong",
        here,
        mgmt_server::admins::Door::WebUi,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(ui, mgmt_server::admins::LoginRefused::WrongCredentials),
        "{ui}"
    );
    // The name is throttled from this address now: the right password gets 429 with
    // Retry-After on both replicas, and the web UI's door says the same.
    for api in [&a, &b] {
        let answer = generate(api, "admin", PASSWORD).await.unwrap();
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(answer.headers().contains_key("retry-after"));
        let body: Value = answer.json().await.unwrap();
        assert!(
            body.to_string().contains("too many failed logins"),
            "{body}"
        );
    }
    let ui = mgmt_server::admins::authenticate(
        &b.pool,
        "admin",
        PASSWORD,
        here,
        mgmt_server::admins::Door::WebUi,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(ui, mgmt_server::admins::LoginRefused::Locked { .. }),
        "{ui}"
    );
    // The flood did not lock `admin` out from elsewhere, nor another name from here.
    let admin = mgmt_server::admins::authenticate(
        &b.pool,
        "admin",
        PASSWORD,
        elsewhere,
        mgmt_server::admins::Door::WebUi,
    )
    .await
    .unwrap();
    assert_eq!(admin.name, "admin");
    a.login("viewer").await;
    let refusals = audit::list(
        &a.pool,
        &AuditFilter {
            action: Some(AuditAction::LoginFailed),
            ..AuditFilter::default()
        },
        Page::ALL,
    )
    .await
    .unwrap();
    let details: Vec<String> = refusals
        .items
        .iter()
        .filter_map(|r| r.detail.clone())
        .collect();
    assert_eq!(
        details
            .iter()
            .filter(|d| d.as_str() == "wrong name or password (REST API)")
            .count(),
        4,
        "{details:?}"
    );
    assert!(details.contains(&"wrong name or password (web UI)".to_owned()));
    assert!(details.contains(&"locked after repeated failures (REST API)".to_owned()));
    assert!(details.contains(&"locked after repeated failures (web UI)".to_owned()));
}

#[tokio::test]
async fn many_wrong_names_from_one_address_throttle_that_address_whatever_the_name() {
    let api = Api::start().await;
    let source: Option<std::net::IpAddr> = Some("198.51.100.9".parse().unwrap());
    let limit = mgmt_server::admins::SOURCE_LOCK.max_failures;
    for i in 0..limit {
        let refused = mgmt_server::admins::authenticate(
            &api.pool,
            &format!("guess{i}"),
            "wrong-password",
            source,
            mgmt_server::admins::Door::RestApi,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(refused, mgmt_server::admins::LoginRefused::WrongCredentials),
            "{refused}"
        );
    }
    let refused = mgmt_server::admins::authenticate(
        &api.pool,
        "admin",
        PASSWORD,
        source,
        mgmt_server::admins::Door::RestApi,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(refused, mgmt_server::admins::LoginRefused::Locked { .. }),
        "{refused}"
    );
    // Over the real door from another address, admin logs in.
    api.login("admin").await;
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_the_server_serves() {
    let api = Api::start().await;
    let document: Value = api
        .http
        .get(format!("{}/api/openapi.json", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let routes = api::documented_routes();
    assert!(routes.len() >= 40, "{}", routes.len());
    for route in &routes {
        let method = route.method.as_str().to_ascii_lowercase();
        assert!(
            document["paths"][&route.path][&method].is_object(),
            "{} {} not documented",
            route.method,
            route.path
        );
        // Every documented route is served: unauthenticated config calls get 401, not 404/405.
        let path = route
            .path
            .replace("{domain}", &GLOBAL_DOMAIN_ID.to_string())
            .replace("{id}", &Uuid::nil().to_string())
            .replace("{parent}", &Uuid::nil().to_string());
        let answer = api
            .http
            .request(route.method.clone(), format!("{}{path}", api.base))
            .send()
            .await
            .unwrap();
        assert!(
            !matches!(
                answer.status(),
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            ) || !route.path.contains("fmc_config"),
            "{} {path}: {}",
            route.method,
            answer.status()
        );
    }
    let documented: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(documented, routes.len());
    let version: Value = api
        .http
        .get(format!(
            "{}/api/fmc_platform/v1/info/serverversion",
            api.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        version["items"][0]["serverVersion"]
            .as_str()
            .unwrap()
            .starts_with("7.4.1 ")
    );
}
