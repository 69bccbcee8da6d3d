//! The administrator lifecycle through both doors: enable, disable, role, password
//! reset and one's own password change, delete; sessions end or are re-checked at once;
//! the last Administrator stays; every 403 is audited; every response carries the
//! security headers.

use mgmt_server::db::admins::{self as admin_rows, AdministratorInput, Role};
use mgmt_server::db::audit::{self, AuditAction, AuditFilter};
use mgmt_server::db::{Actor, GLOBAL_DOMAIN_ID, Page, PasswordHash};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::api::{Api, PASSWORD, messages, pool_body};
use crate::ui::Ui;

async fn token(api: &Api, user: &str, password: &str) -> Result<String, StatusCode> {
    let answer = api
        .http
        .post(format!(
            "{}/api/fmc_platform/v1/auth/generatetoken",
            api.base
        ))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    if answer.status() != StatusCode::NO_CONTENT {
        return Err(answer.status());
    }
    Ok(answer.headers()["X-auth-access-token"]
        .to_str()
        .unwrap()
        .to_owned())
}

async fn id_of(api: &Api, name: &str) -> Uuid {
    admin_rows::find_by_name(&api.pool, name)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn audited(pool: &sqlx::PgPool, action: AuditAction) -> Vec<audit::AuditRecord> {
    audit::list(
        pool,
        &AuditFilter {
            action: Some(action),
            ..AuditFilter::default()
        },
        Page::ALL,
    )
    .await
    .unwrap()
    .items
}

#[tokio::test]
async fn a_disabled_administrator_is_out_at_once_and_back_when_enabled() {
    let api = Api::start().await;
    let admin = api.login("admin").await;
    let (status, created, _) = api
        .call(
            &admin,
            Method::POST,
            "/users/users",
            Some(json!({ "name": "ops", "password": "Grüße-aus-Köln-7", "role": { "name": "Network Admin" } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["role"]["name"], "Network Admin");
    let ops = token(&api, "ops", "Grüße-aus-Köln-7").await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, body, _) = api
        .call(
            &admin,
            Method::PUT,
            &format!("/users/users/{id}"),
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enabled"], false);
    let (status, _, _) = api
        .call(&ops, Method::GET, "/object/ipv4addresspools", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the live token ended with the account"
    );
    assert_eq!(
        token(&api, "ops", "Grüße-aus-Köln-7").await,
        Err(StatusCode::UNAUTHORIZED)
    );
    // The session rows are revoked, not only refused.
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_sessions WHERE administrator_id = $1 AND revoked_at IS NULL",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_one(&api.pool)
    .await
    .unwrap();
    assert_eq!(live, 0);

    let (status, _, _) = api
        .call(
            &admin,
            Method::PUT,
            &format!("/users/users/{id}"),
            Some(json!({ "enabled": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    token(&api, "ops", "Grüße-aus-Köln-7").await.unwrap();
    let updates = audited(&api.pool, AuditAction::Update).await;
    assert!(
        updates
            .iter()
            .filter(|r| r.object_name.as_deref() == Some("ops"))
            .count()
            >= 2,
        "{updates:?}"
    );
}

#[tokio::test]
async fn the_last_enabled_administrator_cannot_be_disabled_demoted_or_deleted() {
    let api = Api::start().await;
    let admin = api.login("admin").await;
    let id = id_of(&api, "admin").await;
    for (method, body, field) in [
        (Method::PUT, Some(json!({ "enabled": false })), "enabled: "),
        (Method::PUT, Some(json!({ "role": "Read-Only" })), "role: "),
        (Method::DELETE, None, "id: "),
    ] {
        let (status, answer, _) = api
            .call(&admin, method, &format!("/users/users/{id}"), body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(messages(&answer).starts_with(field), "{answer}");
        assert!(
            messages(&answer).contains("last enabled Administrator"),
            "{answer}"
        );
    }
    let stored = admin_rows::get(&api.pool, id).await.unwrap();
    assert!(stored.enabled);
    assert_eq!(stored.role.0, Role::Administrator);
    // With a second Administrator, the first may step down.
    let (status, second, _) = api
        .call(&admin, Method::POST, "/users/users", Some(json!({ "name": "boss", "password": "correct horse battery staple", "role": "Administrator" })))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let (status, body, _) = api
        .call(
            &admin,
            Method::PUT,
            &format!("/users/users/{id}"),
            Some(json!({ "role": "Network Admin" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // admin is a Network Admin now: managing administrators is refused at its next request.
    let (status, body, _) = api
        .call(
            &admin,
            Method::DELETE,
            &format!("/users/users/{}", second["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test]
async fn common_passwords_are_refused_and_a_reset_password_ends_the_sessions() {
    let api = Api::start().await;
    let admin = api.login("admin").await;
    for weak in ["password", "12345678", "short"] {
        let (status, body, _) = api
            .call(
                &admin,
                Method::POST,
                "/users/users",
                Some(json!({ "name": "weak", "password": weak, "role": "Read-Only" })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{weak}: {body}");
        assert!(messages(&body).starts_with("password: "), "{body}");
    }
    let viewer = api.login("viewer").await;
    let id = id_of(&api, "viewer").await;
    let (status, body, _) = api
        .call(
            &admin,
            Method::PUT,
            &format!("/users/users/{id}"),
            Some(json!({ "password": "qwertyuiop" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, _) = api
        .call(
            &admin,
            Method::PUT,
            &format!("/users/users/{id}"),
            Some(json!({ "password": "пароль-Ёжик-42" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = api
        .call(&viewer, Method::GET, "/object/ipv4addresspools", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        token(&api, "viewer", PASSWORD).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    token(&api, "viewer", "пароль-Ёжик-42").await.unwrap();
}

#[tokio::test]
async fn an_administrator_changes_its_own_password_with_the_current_one_whatever_its_role() {
    let api = Api::start().await;
    let first = api.login("viewer").await;
    let second = api.login("viewer").await;
    let change = |current: &str, new: &str| {
        api.http
            .post(format!(
                "{}/api/fmc_platform/v1/auth/changepassword",
                api.base
            ))
            .header("X-auth-access-token", &first)
            .json(&json!({ "currentPassword": current, "newPassword": new }))
            .send()
    };
    let answer = change("not-it", "correct horse battery staple")
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let body: Value = answer.json().await.unwrap();
    assert!(messages(&body).contains("currentPassword: "), "{body}");
    let answer = change(PASSWORD, "password1").await.unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let answer = change(PASSWORD, "correct horse battery staple")
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
    // This session goes on; the other one ended; the new password logs in.
    let (status, _, _) = api
        .call(&first, Method::GET, "/object/ipv4addresspools", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = api
        .call(&second, Method::GET, "/object/ipv4addresspools", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    token(&api, "viewer", "correct horse battery staple")
        .await
        .unwrap();
    let updates = audited(&api.pool, AuditAction::Update).await;
    assert!(
        updates
            .iter()
            .any(|r| r.object_name.as_deref() == Some("viewer"))
    );
}

#[tokio::test]
async fn every_refusal_for_a_role_is_audited_on_both_doors() {
    let api = Api::start().await;
    let viewer = api.login("viewer").await;
    let (status, _, _) = api
        .call(
            &viewer,
            Method::POST,
            "/object/ipv4addresspools",
            Some(pool_body("P")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = api
        .call(&viewer, Method::POST, "/users/users", Some(json!({ "name": "x", "password": "correct horse battery staple", "role": "Administrator" })))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let refusals = audited(&api.pool, AuditAction::Forbidden).await;
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|r| r.actor == "viewer" && r.source_address.0.is_some())
    );
    assert!(refusals.iter().any(|r| {
        r.detail
            .as_deref()
            .is_some_and(|d| d.contains("ipv4addresspools"))
    }));

    let mut ui = Ui::start().await;
    let mut conn = ui.pool().acquire().await.unwrap();
    admin_rows::create(
        &mut conn,
        &Actor::system(),
        GLOBAL_DOMAIN_ID,
        &AdministratorInput {
            name: "reader".to_owned(),
            password_hash: PasswordHash::new(PASSWORD).unwrap(),
            role: Role::ReadOnly,
            enabled: true,
        },
    )
    .await
    .unwrap();
    ui.log_in_as("reader", PASSWORD).await;
    let page = ui.get("/objects/pools").await;
    let shown = ui
        .post(&page, "/objects/pools", &[("name", "P"), ("kind", "ipv4")])
        .await;
    assert_eq!(shown.status, StatusCode::FORBIDDEN);
    let refusals = audited(ui.pool(), AuditAction::Forbidden).await;
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].actor, "reader");
    assert_eq!(refusals[0].detail.as_deref(), Some("POST /objects/pools"));
}

#[tokio::test]
async fn the_users_page_disables_an_administrator_and_refuses_to_disable_the_last_one() {
    let ui = Ui::start().await;
    let mut conn = ui.pool().acquire().await.unwrap();
    let ops = admin_rows::create(
        &mut conn,
        &Actor::system(),
        GLOBAL_DOMAIN_ID,
        &AdministratorInput {
            name: "ops".to_owned(),
            password_hash: PasswordHash::new(PASSWORD).unwrap(),
            role: Role::NetworkAdmin,
            enabled: true,
        },
    )
    .await
    .unwrap();
    let page = ui.get("/system/administrators").await;
    let shown = ui
        .post(
            &page,
            &format!("/system/administrators/{}", ops.id),
            &[("action", "disable")],
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(!admin_rows::get(ui.pool(), ops.id).await.unwrap().enabled);
    let admin = admin_rows::find_by_name(ui.pool(), "admin")
        .await
        .unwrap()
        .unwrap();
    let shown = ui
        .post(
            &page,
            &format!("/system/administrators/{}", admin.id),
            &[("action", "disable")],
        )
        .await;
    assert!(
        shown.html.contains("id=\"admin-refused\""),
        "{}",
        shown.html
    );
    assert!(shown.html.contains("last enabled Administrator"));
    let shown = ui
        .post(
            &page,
            &format!("/system/administrators/{}", ops.id),
            &[("action", "password"), ("password", "password")],
        )
        .await;
    assert!(shown.html.contains("too common"), "{}", shown.html);
    let shown = ui
        .post(
            &page,
            &format!("/system/administrators/{}", ops.id),
            &[("action", "delete")],
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(
        admin_rows::find_by_name(ui.pool(), "ops")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn rest_answers_carry_hsts_nosniff_a_framing_csp_and_a_charset() {
    let api = Api::start().await;
    let refused = api
        .http
        .post(format!(
            "{}/api/fmc_platform/v1/auth/generatetoken",
            api.base
        ))
        .send()
        .await
        .unwrap();
    let admin = api.login("admin").await;
    let (_, _, listed) = api.call(&admin, Method::GET, "/users/users", None).await;
    for headers in [refused.headers(), &listed] {
        assert!(
            headers.contains_key("strict-transport-security"),
            "{headers:?}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .contains("charset=utf-8"),
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn the_change_password_page_wants_the_current_password_and_a_strong_new_one() {
    let ui = Ui::start().await;
    let page = ui.get("/system/password").await;
    assert_eq!(page.status, StatusCode::OK);
    let strong = "correct horse battery staple";
    let shown = ui
        .post(
            &page,
            "/system/password",
            &[
                ("current", "not-it"),
                ("password", strong),
                ("confirm", strong),
            ],
        )
        .await;
    assert!(
        crate::ui::field_error(&shown.html, "current").is_some(),
        "{}",
        shown.html
    );
    let shown = ui
        .post(
            &page,
            "/system/password",
            &[
                ("current", PASSWORD),
                ("password", "password"),
                ("confirm", "password"),
            ],
        )
        .await;
    assert!(crate::ui::field_error(&shown.html, "password").is_some());
    let shown = ui
        .post(
            &page,
            "/system/password",
            &[
                ("current", PASSWORD),
                ("password", strong),
                ("confirm", strong),
            ],
        )
        .await;
    assert!(
        shown.html.contains("id=\"password-changed\""),
        "{}",
        shown.html
    );
    let admin = admin_rows::find_by_name(ui.pool(), "admin")
        .await
        .unwrap()
        .unwrap();
    assert!(admin.password_hash.verify(strong));
}

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_flood_of_wrong_passwords_from_many_addresses_keeps_the_memory_peak_bounded() {
    let api = Api::start().await;
    let before = status_kib("VmRSS:");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40u8 {
        let pool = api.pool.clone();
        tasks.spawn(async move {
            mgmt_server::admins::authenticate(
                &pool,
                if i % 2 == 0 { "admin" } else { "nobody" },
                "wrong-password",
                Some(std::net::IpAddr::from([192, 0, 2, i])),
                mgmt_server::admins::Door::RestApi,
            )
            .await
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert!(matches!(
            result.unwrap(),
            Err(mgmt_server::admins::LoginRefused::WrongCredentials)
        ));
    }
    // Unbounded, 40 argon2 computations of 19 MiB at once would add about 760 MiB.
    let peak = status_kib("VmHWM:");
    assert!(
        peak.saturating_sub(before) < 256 * 1024,
        "resident memory peaked {} MiB above the {} MiB before the flood",
        peak.saturating_sub(before) / 1024,
        before / 1024
    );
    assert!(mgmt_server::admins::hashing::most_running_at_once() <= 2);
}
