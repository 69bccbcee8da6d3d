//! The web UI over HTTP: the real UI router on a loopback port, a throw-away database,
//! an administrator who logs in through `/login` and posts the pages' forms with the
//! CSRF token the page gave.

use std::net::{Ipv4Addr, SocketAddr};

use mgmt_server::db::admins::{self, AdministratorInput, Role};
use mgmt_server::db::cert_enrollments::{
    self, CertEnrollmentInput, EnrollmentInput, EnrollmentType,
};
use mgmt_server::db::device_certificates;
use mgmt_server::db::devices::{self, Device, DeviceInput};
use mgmt_server::db::pool_overrides;
use mgmt_server::db::pools::{self, Ipv4AddressPoolInput, Ipv6AddressPoolInput};
use mgmt_server::db::{Actor, EncryptionKey, GLOBAL_DOMAIN_ID, Page, PasswordHash};
use mgmt_server::services::Services;
use mgmt_server::ui::{self, SESSION_COOKIE, UiContext};
use reqwest::StatusCode;
use reqwest::header;
use sqlx::PgPool;
use uuid::Uuid;
use vpn_core::config::PrivateKeyPem;

use crate::support;

pub(crate) const PASSWORD: &str = "Sup3r-secret!";

/// The UI served on 127.0.0.1 (plain HTTP: the test keeps the `__Host-` session
/// cookie itself, as a browser would over HTTPS), logged in as Administrator `admin`.
pub(crate) struct Ui {
    base: String,
    pool: PgPool,
    key: EncryptionKey,
    http: reqwest::Client,
    cookie: String,
}

/// A page as the browser ended on it: its status and HTML.
pub(crate) struct Shown {
    pub(crate) status: StatusCode,
    pub(crate) html: String,
}

impl Ui {
    pub(crate) async fn start() -> Self {
        let pool = support::fresh_database().await;
        let key = EncryptionKey::generate().unwrap();
        let mut conn = pool.acquire().await.unwrap();
        admins::create(
            &mut conn,
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
        let services = Services::start(pool.clone(), key.clone(), "fmc-test")
            .await
            .unwrap();
        let router = ui::router(UiContext::new(pool.clone(), key.clone(), services));
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
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut ui = Self {
            base: format!("http://{address}"),
            pool,
            key,
            http,
            cookie: String::new(),
        };
        ui.log_in().await;
        ui
    }

    async fn log_in(&mut self) {
        self.log_in_as("admin", PASSWORD).await;
    }

    /// Logs in as `name` instead (the session cookie is replaced).
    pub(crate) async fn log_in_as(&mut self, name: &str, password: &str) {
        let response = self
            .http
            .post(format!("{}/login", self.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(&[("name", name), ("password", password)]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let set_cookie = response.headers()[header::SET_COOKIE].to_str().unwrap();
        assert!(set_cookie.contains("Secure"), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        assert!(
            cookie.starts_with(&format!("{SESSION_COOKIE}=")),
            "{cookie}"
        );
        self.cookie = cookie;
    }

    /// Follows redirects like a browser: a form's 303 becomes a GET of its location.
    async fn finish(&self, mut response: reqwest::Response) -> Shown {
        for _ in 0..5 {
            if !response.status().is_redirection() {
                break;
            }
            let location = response.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned();
            assert_ne!(location, "/login", "the session was not accepted");
            response = self
                .http
                .get(format!("{}{location}", self.base))
                .header(header::COOKIE, &self.cookie)
                .send()
                .await
                .unwrap();
        }
        Shown {
            status: response.status(),
            html: response.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Shown {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    /// Posts `fields` with the CSRF token of `page`, as its form would.
    pub(crate) async fn post(&self, page: &Shown, path: &str, fields: &[(&str, &str)]) -> Shown {
        let csrf = csrf(&page.html);
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(header::COOKIE, &self.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(&all))
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn device(&self, name: &str, host: &str) -> Device {
        let mut conn = self.pool.acquire().await.unwrap();
        devices::create(
            &mut conn,
            &support::admin(),
            GLOBAL_DOMAIN_ID,
            &DeviceInput {
                name: name.to_owned(),
                description: String::new(),
                host_name: host.to_owned(),
                nat_id: None,
            },
        )
        .await
        .unwrap()
    }

    async fn ipv4_pool(&self, name: &str, overridable: bool) -> Uuid {
        let mut conn = self.pool.acquire().await.unwrap();
        pools::create_ipv4(
            &mut conn,
            &support::admin(),
            GLOBAL_DOMAIN_ID,
            &Ipv4AddressPoolInput {
                name: name.to_owned(),
                description: String::new(),
                start: Ipv4Addr::new(10, 70, 1, 10),
                end: Ipv4Addr::new(10, 70, 1, 99),
                mask: Ipv4Addr::new(255, 255, 255, 0),
                overridable,
            },
        )
        .await
        .unwrap()
        .id
    }

    async fn ipv4_overrides(&self, pool_id: Uuid) -> i64 {
        pool_overrides::list_ipv4(&self.pool, GLOBAL_DOMAIN_ID, pool_id, Page::ALL)
            .await
            .unwrap()
            .total
    }

    pub(crate) async fn ca_trustpoint(&self, name: &str) -> Uuid {
        support::ca_trustpoint(&self.pool, &self.key, name).await
    }

    async fn identity_enrollment(&self, name: &str, enrollment_type: EnrollmentType) -> Uuid {
        let mut conn = self.pool.acquire().await.unwrap();
        let (chain, private_key) = support::certificate("vpn");
        cert_enrollments::create(
            &mut conn,
            &support::admin(),
            GLOBAL_DOMAIN_ID,
            &CertEnrollmentInput {
                name: name.to_owned(),
                description: String::new(),
                enrollment_type,
                content: EnrollmentInput::Identity {
                    certificate_chain_pem: chain,
                    private_key_pem: Some(PrivateKeyPem(private_key)),
                },
            },
            &self.key,
        )
        .await
        .unwrap()
        .id
    }
}

fn form_body(fields: &[(&str, &str)]) -> String {
    serde_html_form::to_string(fields).unwrap()
}

/// The CSRF token the page's forms carry.
fn csrf(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html
        .find(marker)
        .expect("the page has no form with a CSRF token")
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The HTML of the element that starts with `opening` up to `closing`.
fn part<'a>(html: &'a str, opening: &str, closing: &str) -> &'a str {
    let start = html
        .find(opening)
        .unwrap_or_else(|| panic!("{opening} is not on the page"));
    let rest = &html[start..];
    &rest[..rest
        .find(closing)
        .map_or(rest.len(), |end| end + closing.len())]
}

/// The text of the error shown next to the field `id`, if any.
pub(crate) fn field_error(html: &str, id: &str) -> Option<String> {
    let opening = format!(r#"<p class="field-error" data-for="{id}">"#);
    let start = html.find(&opening)? + opening.len();
    Some(html[start..].split("</p>").next()?.to_owned())
}

/// The value the input `id` shows.
fn input_value(html: &str, id: &str) -> String {
    let tag = part(html, &format!(r#"id="{id}""#), ">");
    let marker = r#"value=""#;
    let start = tag.find(marker).map(|i| i + marker.len());
    start.map_or(String::new(), |s| {
        tag[s..].split('"').next().unwrap().to_owned()
    })
}

#[tokio::test]
async fn an_administrator_overrides_a_pool_for_one_device_and_removes_the_override() {
    let ui = Ui::start().await;
    let a = ui.device("ftd-a", "192.0.2.1").await;
    let b = ui.device("ftd-b", "192.0.2.2").await;
    let pool_id = ui.ipv4_pool("VPN-POOL", true).await;
    let edit = format!("/objects/pools?edit={pool_id}");

    let page = ui.get(&edit).await;
    assert_eq!(page.status, StatusCode::OK);
    let table = part(
        &page.html,
        r#"<table class="grid" id="overrides-table">"#,
        "</table>",
    );
    assert!(table.contains("No overrides"), "{table}");
    let devices = part(&page.html, r#"<select name="device""#, "</select>");
    assert!(devices.contains(">ftd-a</option>") && devices.contains(">ftd-b</option>"));
    assert_eq!(input_value(&page.html, "override-mask"), "255.255.255.0");

    // Add an override for ftd-b: listed with its device and range.
    let b_id = b.id.to_string();
    let overrides = format!("/objects/pools/{pool_id}/overrides");
    let page = ui
        .post(
            &page,
            &overrides,
            &[
                ("family", "ipv4"),
                ("device", &b_id),
                ("start", "10.70.2.10"),
                ("end", "10.70.2.99"),
                ("mask", "255.255.255.0"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let table = part(
        &page.html,
        r#"<table class="grid" id="overrides-table">"#,
        "</table>",
    );
    assert!(table.contains("<td>ftd-b</td>"), "{table}");
    assert!(
        table.contains("10.70.2.10-10.70.2.99 mask 255.255.255.0"),
        "{table}"
    );
    assert!(table.contains(">Remove</button>"), "{table}");
    assert_eq!(ui.ipv4_overrides(pool_id).await, 1);

    // A reversed range: the error beside the first address, the typed values kept,
    // nothing stored.
    let a_id = a.id.to_string();
    let refused = ui
        .post(
            &page,
            &overrides,
            &[
                ("family", "ipv4"),
                ("device", &a_id),
                ("start", "10.70.3.99"),
                ("end", "10.70.3.10"),
                ("mask", "255.255.255.0"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::OK);
    assert_eq!(
        field_error(&refused.html, "override-start").as_deref(),
        Some("The pool starts at 10.70.3.99, after its end 10.70.3.10.")
    );
    assert_eq!(input_value(&refused.html, "override-start"), "10.70.3.99");
    assert_eq!(input_value(&refused.html, "override-end"), "10.70.3.10");
    assert!(
        refused.html.contains(&format!(
            r#"<option value="{a_id}" selected>ftd-a</option>"#
        )),
        "the chosen device is kept"
    );
    assert_eq!(ui.ipv4_overrides(pool_id).await, 1);

    // A netmask with holes, and a second override for ftd-b, are refused on their fields.
    let refused = ui
        .post(
            &page,
            &overrides,
            &[
                ("family", "ipv4"),
                ("device", &a_id),
                ("start", "10.70.3.10"),
                ("end", "10.70.3.99"),
                ("mask", "255.0.255.0"),
            ],
        )
        .await;
    let mask_error = field_error(&refused.html, "override-mask").unwrap_or_default();
    assert!(
        mask_error.contains("255.0.255.0 is not a valid netmask"),
        "{mask_error}"
    );
    let refused = ui
        .post(
            &page,
            &overrides,
            &[
                ("family", "ipv4"),
                ("device", &b_id),
                ("start", "10.70.4.10"),
                ("end", "10.70.4.99"),
                ("mask", "255.255.255.0"),
            ],
        )
        .await;
    let device_error = field_error(&refused.html, "override-device").unwrap_or_default();
    assert!(
        device_error.contains("already has an override"),
        "{device_error}"
    );
    assert_eq!(ui.ipv4_overrides(pool_id).await, 1);

    // Remove it: the table is empty again.
    let listed = pool_overrides::list_ipv4(&ui.pool, GLOBAL_DOMAIN_ID, pool_id, Page::ALL)
        .await
        .unwrap();
    let page = ui
        .post(
            &page,
            &format!(
                "/objects/pools/{pool_id}/overrides/{}/delete",
                listed.items[0].id
            ),
            &[("family", "ipv4")],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let table = part(
        &page.html,
        r#"<table class="grid" id="overrides-table">"#,
        "</table>",
    );
    assert!(table.contains("No overrides"), "{table}");
    assert_eq!(ui.ipv4_overrides(pool_id).await, 0);
}

#[tokio::test]
async fn an_ipv6_pool_is_overridden_with_a_start_prefix_and_count_and_a_fixed_pool_says_it_is_not_overridable()
 {
    let ui = Ui::start().await;
    let b = ui.device("ftd-b", "192.0.2.2").await;
    let fixed = ui.ipv4_pool("FIXED", false).await;
    let page = ui.get(&format!("/objects/pools?edit={fixed}")).await;
    assert!(page.html.contains(r#"id="not-overridable""#));
    assert!(page.html.contains("This pool is not overridable"));
    assert!(!page.html.contains(r#"id="override-form""#));

    let mut conn = ui.pool.acquire().await.unwrap();
    let v6 = pools::create_ipv6(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        &Ipv6AddressPoolInput {
            name: "VPN-POOL6".to_owned(),
            description: String::new(),
            start: "2001:db8:1::1".parse().unwrap(),
            prefix_length: 64,
            number_of_addresses: 100,
            overridable: true,
        },
    )
    .await
    .unwrap();
    let page = ui.get(&format!("/objects/pools?edit={}", v6.id)).await;
    assert_eq!(input_value(&page.html, "override-prefix"), "64");
    let b_id = b.id.to_string();
    let page = ui
        .post(
            &page,
            &format!("/objects/pools/{}/overrides", v6.id),
            &[
                ("family", "ipv6"),
                ("device", &b_id),
                ("start", "2001:db8:2::1"),
                ("prefix", "64"),
                ("count", "0"),
            ],
        )
        .await;
    assert_eq!(
        field_error(&page.html, "override-count").as_deref(),
        Some("The pool has no addresses (count is 0).")
    );
    assert_eq!(input_value(&page.html, "override-start"), "2001:db8:2::1");
    let page = ui
        .post(
            &page,
            &format!("/objects/pools/{}/overrides", v6.id),
            &[
                ("family", "ipv6"),
                ("device", &b_id),
                ("start", "2001:db8:2::1"),
                ("prefix", "64"),
                ("count", "50"),
            ],
        )
        .await;
    let table = part(
        &page.html,
        r#"<table class="grid" id="overrides-table">"#,
        "</table>",
    );
    assert!(table.contains("<td>ftd-b</td>"), "{table}");
    assert!(table.contains("2001:db8:2::1/64 (50 addresses)"), "{table}");
}

#[tokio::test]
async fn the_certificates_page_lists_each_devices_certificates_without_their_keys() {
    let ui = Ui::start().await;
    let a = ui.device("ftd-a", "192.0.2.1").await;
    let b = ui.device("ftd-b", "192.0.2.2").await;
    let internal = ui
        .identity_enrollment("VPN-ID", EnrollmentType::SelfSignedCertificate)
        .await;
    let manual = ui
        .identity_enrollment("VPN-MANUAL", EnrollmentType::Manual)
        .await;
    let mut conn = ui.pool.acquire().await.unwrap();
    let (issued_chain, issued_key) = support::certificate("ftd-a-issued");
    device_certificates::record_issued(
        &mut conn,
        &Actor::system(),
        GLOBAL_DOMAIN_ID,
        a.id,
        internal,
        1,
        &issued_chain,
        &PrivateKeyPem(issued_key),
        &ui.key,
    )
    .await
    .unwrap();
    let (own_chain, own_key) = support::certificate("ftd-b-own");
    device_certificates::install(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        b.id,
        manual,
        &own_chain,
        &PrivateKeyPem(own_key),
        &ui.key,
    )
    .await
    .unwrap();

    let devices = ui.get("/devices").await;
    assert!(devices.html.contains(r#"href="/devices/certificates""#));
    let page = ui.get("/devices/certificates").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.html.contains("PRIVATE KEY"));
    let table = part(
        &page.html,
        r#"<table class="grid" id="certificates-table">"#,
        "</table>",
    );
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 2, "{table}");
    let (issued, installed) = (rows[0], rows[1]);
    for part in [
        "ftd-a",
        "VPN-ID",
        "Issued by the internal CA",
        "CN=ftd-a-issued",
    ] {
        assert!(issued.contains(part), "{part} missing from {issued}");
    }
    assert!(
        !issued.contains("Delete"),
        "an issued certificate is not deleted here"
    );
    for part in ["ftd-b", "VPN-MANUAL", "Installed", "CN=ftd-b-own", "Delete"] {
        assert!(installed.contains(part), "{part} missing from {installed}");
    }
    let der = vpn_core::pki::pem::certificates(&issued_chain).unwrap();
    let not_after = vpn_core::pki::CertificateInfo::from_der(der[0].as_ref())
        .unwrap()
        .not_after
        .date();
    assert!(
        issued.contains(&format!(r#"<td class="nowrap">{not_after}</td>"#)),
        "no expiry date {not_after} in {issued}"
    );

    // Deleting the installed one leaves ftd-b without a certificate of its own.
    let installed_id =
        device_certificates::list_for_device(&ui.pool, GLOBAL_DOMAIN_ID, b.id, Page::ALL)
            .await
            .unwrap()
            .items[0]
            .id;
    let page = ui
        .post(
            &page,
            &format!("/devices/certificates/{installed_id}/delete"),
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let table = part(
        &page.html,
        r#"<table class="grid" id="certificates-table">"#,
        "</table>",
    );
    assert!(!table.contains("ftd-b"), "{table}");
    assert!(table.contains("ftd-a"), "{table}");
}

/// A page's text as the user reads it (the entities askama escapes back to characters).
fn unescaped(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn a_device_with_a_bad_host_gets_the_same_rule_from_the_rest_api_and_the_form() {
    let ui = Ui::start().await;
    let bad_host = "ftd one:8305";
    let rule = mgmt_server::devices::records::host_problem(bad_host).unwrap();

    // The web UI: the rule's message next to the Host field, nothing stored.
    let page = ui.get("/devices").await;
    let shown = ui
        .post(
            &page,
            "/devices",
            &[
                ("host", bad_host),
                ("name", "ftd-1"),
                ("registration_key", "cisco123"),
                ("nat_id", ""),
            ],
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    let message = unescaped(&field_error(&shown.html, "host").expect("no error at the host"));
    assert!(message.starts_with(&rule), "{message} is not {rule}");
    assert!(field_error(&shown.html, "name").is_none());

    // The REST API on the same database: 400 naming hostName with the same rule.
    let services = Services::start(ui.pool.clone(), ui.key.clone(), "fmc-test")
        .await
        .unwrap();
    let router = mgmt_server::api::router(mgmt_server::api::ApiContext::new(
        ui.pool.clone(),
        services,
        ui.key.clone(),
        1000,
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
    let login = ui
        .http
        .post(format!(
            "http://{address}/api/fmc_platform/v1/auth/generatetoken"
        ))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::NO_CONTENT);
    let token = login.headers()["X-auth-access-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let answer = ui
        .http
        .post(format!(
            "http://{address}/api/fmc_config/v1/domain/{GLOBAL_DOMAIN_ID}/devices/devicerecords"
        ))
        .header("X-auth-access-token", token)
        .json(&serde_json::json!({
            "name": "ftd-1", "hostName": bad_host, "regKey": "cisco123", "type": "Device"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let body = answer.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let descriptions: Vec<String> = body["error"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["description"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(descriptions, [format!("hostName: {rule}")]);
    assert_eq!(
        devices::list(&ui.pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        0,
        "neither door stored the device"
    );
}

#[tokio::test]
async fn a_certificate_method_without_trustpoint_gets_the_same_answer_from_the_rest_api_and_the_profile_dialog()
 {
    use mgmt_server::db::group_policies::DEFAULT_GROUP_POLICY_ID;
    use mgmt_server::db::policies::RaVpnPolicyInput;
    use mgmt_server::db::profiles::ConnectionProfileInput;
    use mgmt_server::ravpn::{policies, profiles};
    use serde_json::json;
    use vpn_core::config::{AaaSettings, AuthenticationMethod};

    // The rule, once, on the service.
    let pool_id = Uuid::new_v4();
    let input = ConnectionProfileInput {
        name: "CERT".to_owned(),
        description: String::new(),
        group_policy_id: DEFAULT_GROUP_POLICY_ID,
        ipv4_pool_ids: vec![pool_id],
        ipv6_pool_ids: Vec::new(),
        trustpoint_ids: Vec::new(),
        machine_trustpoint_ids: Vec::new(),
        user_trustpoint_ids: Vec::new(),
        aaa: AaaSettings::new(AuthenticationMethod::ClientCertificateOnly),
        group_aliases: Vec::new(),
        group_urls: Vec::new(),
    };
    let problems = profiles::check(&input);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, profiles::Field::Trustpoints);
    let rule = problems[0].message.clone();

    // REST: 400 naming the FMC field.
    let api = crate::api::Api::start().await;
    let token = api.login("admin").await;
    let (_, policy, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/policy/ravpns",
            Some(json!({ "name": "P" })),
        )
        .await;
    let (_, pool, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/object/ipv4addresspools",
            Some(crate::api::pool_body("POOL")),
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
                "name": "CERT",
                "groupPolicy": { "id": DEFAULT_GROUP_POLICY_ID },
                "ipv4AddressPool": [{ "id": pool["id"] }],
                "authenticationMethod": "CLIENT_CERTIFICATE_ONLY"
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(crate::api::messages(&body), format!("trustpoints: {rule}"));

    // UI: the same rule's message on the trustpoints field of the dialog.
    let ui = Ui::start().await;
    let pool_id = ui.ipv4_pool("POOL", false).await;
    let policy = policies::create(
        &ui.pool,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        &RaVpnPolicyInput::new("P"),
    )
    .await
    .unwrap();
    let dialog = format!("/ravpn/{}/profiles/new", policy.id);
    let page = ui.get(&dialog).await;
    let pool_id = pool_id.to_string();
    let group_policy_id = DEFAULT_GROUP_POLICY_ID.to_string();
    let shown = ui
        .post(
            &page,
            &dialog,
            &[
                ("profile_name", "CERT"),
                ("group_policy_id", &group_policy_id),
                ("ipv4_pool_ids", &pool_id),
                ("auth_method", "CLIENT_CERTIFICATE_ONLY"),
                ("mapping", "specific"),
                ("primary_field", "CN"),
            ],
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(
        field_error(&shown.html, "trustpoint_ids").as_deref(),
        Some(format!("{}{}.", rule[..1].to_uppercase(), &rule[1..]).as_str()),
        "{}",
        shown.html
    );
    let stored = profiles::list(&ui.pool, GLOBAL_DOMAIN_ID, policy.id, Page::ALL)
        .await
        .unwrap();
    assert_eq!(stored.total, 0);
}

#[tokio::test]
async fn mca_slot_binding_gets_the_same_answer_and_the_same_warning_from_the_rest_api_and_the_profile_dialog()
 {
    use mgmt_server::db::group_policies::DEFAULT_GROUP_POLICY_ID;
    use mgmt_server::db::policies::RaVpnPolicyInput;
    use mgmt_server::db::profiles::ConnectionProfileInput;
    use mgmt_server::ravpn::{policies, profiles};
    use serde_json::json;
    use vpn_core::config::{AaaSettings, AuthenticationMethod};

    // The rule and the warning, once, on the service.
    let (machine, user) = (Uuid::new_v4(), Uuid::new_v4());
    let mut aaa = AaaSettings::new(AuthenticationMethod::ClientCertificateOnly);
    aaa.enable_multiple_certificate_authentication = true;
    let input = ConnectionProfileInput {
        name: "MCA".to_owned(),
        description: String::new(),
        group_policy_id: DEFAULT_GROUP_POLICY_ID,
        ipv4_pool_ids: vec![Uuid::new_v4()],
        ipv6_pool_ids: Vec::new(),
        trustpoint_ids: vec![machine],
        machine_trustpoint_ids: vec![machine],
        user_trustpoint_ids: vec![user],
        aaa: aaa.clone(),
        group_aliases: Vec::new(),
        group_urls: Vec::new(),
    };
    let problems = profiles::check(&input);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, profiles::Field::UserTrustpoints);
    let rule = problems[0].message.clone();
    let warnings = profiles::warnings(&aaa, &[], &[]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let warning = warnings[0].message.clone();

    // REST: 400 naming our extension field; unbound MCA is stored with the warning.
    let api = crate::api::Api::start().await;
    let token = api.login("admin").await;
    let (machine, user) = (
        api.ca_trustpoint("MACHINE-CA").await,
        api.ca_trustpoint("USER-CA").await,
    );
    let (_, policy, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/policy/ravpns",
            Some(json!({ "name": "P" })),
        )
        .await;
    let (_, pool, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/object/ipv4addresspools",
            Some(crate::api::pool_body("POOL")),
        )
        .await;
    let path = format!(
        "/policy/ravpns/{}/connectionprofiles",
        policy["id"].as_str().unwrap()
    );
    let body = |trustpoints: Vec<Uuid>, machine_slot: Vec<Uuid>, user_slot: Vec<Uuid>| {
        let refs = |ids: Vec<Uuid>| ids.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>();
        json!({
            "name": "MCA",
            "groupPolicy": { "id": DEFAULT_GROUP_POLICY_ID },
            "ipv4AddressPool": [{ "id": pool["id"] }],
            "authenticationMethod": "CLIENT_CERTIFICATE_ONLY",
            "enableMultipleCertificateAuthentication": true,
            "trustpoints": refs(trustpoints),
            "machineCertificateTrustpoints": refs(machine_slot),
            "userCertificateTrustpoints": refs(user_slot),
        })
    };
    let (status, refused, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            &path,
            Some(body(vec![machine], vec![machine], vec![user])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(
        crate::api::messages(&refused),
        format!("userCertificateTrustpoints: {rule}")
    );
    let (status, unbound, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            &path,
            Some(body(vec![machine, user], vec![], vec![])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{unbound}");
    assert_eq!(
        unbound["warnings"],
        json!([{ "field": "machineCertificateTrustpoints", "description": warning }])
    );
    let (status, bound, _) = api
        .call(
            &token,
            reqwest::Method::PUT,
            &format!("{path}/{}", unbound["id"].as_str().unwrap()),
            Some(body(vec![machine, user], vec![machine], vec![user])),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bound}");
    assert_eq!(bound["warnings"], json!([]));
    assert_eq!(
        bound["machineCertificateTrustpoints"][0]["name"],
        "MACHINE-CA"
    );
    assert_eq!(bound["userCertificateTrustpoints"][0]["name"], "USER-CA");

    // UI: the same rule beside the user slot; unbound MCA is saved and warned about in
    // the policy's profile list and in the dialog.
    let ui = Ui::start().await;
    let pool_id = ui.ipv4_pool("POOL", false).await.to_string();
    let machine = ui.ca_trustpoint("MACHINE-CA").await.to_string();
    let user = ui.ca_trustpoint("USER-CA").await.to_string();
    let policy = policies::create(
        &ui.pool,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        &RaVpnPolicyInput::new("P"),
    )
    .await
    .unwrap();
    let dialog = format!("/ravpn/{}/profiles/new", policy.id);
    let page = ui.get(&dialog).await;
    let group_policy_id = DEFAULT_GROUP_POLICY_ID.to_string();
    let common = [
        ("profile_name", "MCA"),
        ("group_policy_id", group_policy_id.as_str()),
        ("ipv4_pool_ids", pool_id.as_str()),
        ("auth_method", "CLIENT_CERTIFICATE_ONLY"),
        ("mca", "on"),
        ("username_source", "SECOND_CERTIFICATE"),
        ("mapping", "specific"),
        ("primary_field", "CN"),
    ];
    let mut foreign = common.to_vec();
    foreign.extend([
        ("trustpoint_ids", machine.as_str()),
        ("machine_trustpoint_ids", machine.as_str()),
        ("user_trustpoint_ids", user.as_str()),
    ]);
    let shown = ui.post(&page, &dialog, &foreign).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(
        field_error(&shown.html, "user_trustpoint_ids").as_deref(),
        Some(format!("{}{}.", rule[..1].to_uppercase(), &rule[1..]).as_str()),
        "{}",
        shown.html
    );
    let mut unbound = common.to_vec();
    unbound.extend([
        ("trustpoint_ids", machine.as_str()),
        ("trustpoint_ids", user.as_str()),
    ]);
    let listed = ui.post(&page, &dialog, &unbound).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(listed.html.contains(&warning), "{}", listed.html);
    let stored = profiles::list(&ui.pool, GLOBAL_DOMAIN_ID, policy.id, Page::ALL)
        .await
        .unwrap();
    assert_eq!(stored.total, 1);
    let edit = ui
        .get(&format!(
            "/ravpn/{}/profiles/{}",
            policy.id, stored.items[0].id
        ))
        .await;
    assert!(edit.html.contains(&warning), "{}", edit.html);
}

#[tokio::test]
async fn port_zero_gets_the_same_answer_from_the_rest_api_and_the_access_interfaces_tab() {
    use mgmt_server::db::policies::RaVpnPolicyInput;
    use mgmt_server::ravpn::policies;
    use serde_json::json;

    let mut input = RaVpnPolicyInput::new("P");
    input.web_port = 0;
    let problems = policies::check(&input);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, policies::Field::WebPort);
    let rule = problems[0].message.clone();

    let api = crate::api::Api::start().await;
    let token = api.login("admin").await;
    let (status, body, _) = api
        .call(
            &token,
            reqwest::Method::POST,
            "/policy/ravpns",
            Some(json!({ "name": "P", "accessInterfaceSettings": { "webPort": 0 } })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        crate::api::messages(&body),
        format!("accessInterfaceSettings.webPort: {rule}")
    );

    let ui = Ui::start().await;
    let policy = policies::create(
        &ui.pool,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        &RaVpnPolicyInput::new("P"),
    )
    .await
    .unwrap();
    let edit = format!("/ravpn/{}", policy.id);
    let page = ui.get(&edit).await;
    let shown = ui
        .post(
            &page,
            &edit,
            &[
                ("version", "1"),
                ("name", "P"),
                ("access_interface", "outside"),
                ("web_port", "0"),
                ("dtls_port", "443"),
            ],
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(
        field_error(&shown.html, "web_port").as_deref(),
        Some(format!("{}{}.", rule[..1].to_uppercase(), &rule[1..]).as_str())
    );
    let stored = policies::get(&ui.pool, GLOBAL_DOMAIN_ID, policy.id)
        .await
        .unwrap();
    assert_eq!((stored.web_port, stored.version), (443, 1));
}

#[tokio::test]
async fn the_login_page_says_when_this_address_is_throttled_and_refuses_even_the_right_password() {
    let ui = Ui::start().await;
    let try_login = |password: &'static str| {
        ui.http
            .post(format!("{}/login", ui.base))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_body(&[("name", "admin"), ("password", password)]))
            .send()
    };
    for _ in 0..mgmt_server::admins::LOGIN_LOCK.max_failures {
        let page = try_login("wrong-password").await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert_eq!(
            field_error(&html, "password").as_deref(),
            Some("The user name or password is wrong.")
        );
    }
    let page = try_login(PASSWORD).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "no session was opened");
    let html = page.text().await.unwrap();
    assert!(
        field_error(&html, "password").is_some_and(|m| m.contains("from your address")),
        "{html}"
    );
}
