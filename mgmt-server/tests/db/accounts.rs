use mgmt_server::admins::{
    AdministratorError, NewAdministrator, SessionError, administrators, sessions,
};
use mgmt_server::db::admins::{self, AdministratorInput, AdministratorUpdate, Role, SessionTokens};
use mgmt_server::db::audit::{self, AuditAction, AuditFilter};
use mgmt_server::db::local_users::{self, LocalUserInput, LocalUserUpdate};
use mgmt_server::db::{DbError, GLOBAL_DOMAIN_ID, Page, PasswordHash};
use mgmt_server::rules::ChangeError;
use time::{Duration, OffsetDateTime};

use crate::support;

#[tokio::test]
async fn local_users_keep_an_argon2_hash_that_is_never_serialised() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    let hash = PasswordHash::new("s3cret-pass").unwrap();
    let created = local_users::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &LocalUserInput {
            name: "alice".to_owned(),
            password_hash: hash.clone(),
        },
    )
    .await
    .unwrap();
    assert!(created.password_hash.verify("s3cret-pass"));
    assert!(!created.password_hash.verify("wrong"));
    let json = serde_json::to_string(&created).unwrap();
    assert!(!json.contains("argon2"), "{json}");

    let error = local_users::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &LocalUserInput {
            name: "alice".to_owned(),
            password_hash: hash.clone(),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Conflict { .. }), "{error}");

    // Renaming keeps the password; a new hash replaces it.
    let renamed = local_users::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        1,
        &LocalUserUpdate {
            name: "alice2".to_owned(),
            password_hash: None,
        },
    )
    .await
    .unwrap();
    assert!(renamed.password_hash.verify("s3cret-pass"));
    let new_password = local_users::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        2,
        &LocalUserUpdate {
            name: "alice2".to_owned(),
            password_hash: Some(PasswordHash::new("other").unwrap()),
        },
    )
    .await
    .unwrap();
    assert!(new_password.password_hash.verify("other"));

    let error = local_users::update(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        created.id,
        2,
        &LocalUserUpdate {
            name: "stale".to_owned(),
            password_hash: None,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Stale { .. }), "{error}");
    assert_eq!(
        local_users::get(&pool, GLOBAL_DOMAIN_ID, created.id)
            .await
            .unwrap()
            .name,
        "alice2"
    );

    // The audit rows say the password changed, never what it is.
    let rows = audit::list(
        &pool,
        &AuditFilter {
            object_id: Some(created.id),
            ..AuditFilter::default()
        },
        Page::ALL,
    )
    .await
    .unwrap();
    assert_eq!(rows.total, 3);
    let text = serde_json::to_string(&rows.items).unwrap();
    assert!(!text.contains("argon2"));
    assert_eq!(
        rows.items[0].after.as_ref().unwrap()["passwordChanged"],
        true
    );

    local_users::delete(&mut conn, &admin, GLOBAL_DOMAIN_ID, created.id, Some(3))
        .await
        .unwrap();
    assert_eq!(
        local_users::list(&pool, GLOBAL_DOMAIN_ID, Page::ALL)
            .await
            .unwrap()
            .total,
        0
    );
}

#[tokio::test]
async fn administrators_have_roles_and_can_be_updated_with_the_current_version_only() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let admin = support::admin();
    assert_eq!(admins::count(&pool).await.unwrap(), 0);
    let created = admins::create(
        &mut conn,
        &admin,
        GLOBAL_DOMAIN_ID,
        &AdministratorInput {
            name: "netops".to_owned(),
            password_hash: PasswordHash::new("Cisco123!").unwrap(),
            role: Role::NetworkAdmin,
            enabled: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(created.role.0, Role::NetworkAdmin);
    assert_eq!(
        serde_json::to_value(&created).unwrap()["role"],
        "Network Admin"
    );
    let found = admins::find_by_name(&pool, "netops")
        .await
        .unwrap()
        .unwrap();
    assert!(found.password_hash.verify("Cisco123!"));
    assert!(
        admins::find_by_name(&pool, "nobody")
            .await
            .unwrap()
            .is_none()
    );

    let demoted = admins::update(
        &mut conn,
        &admin,
        created.id,
        1,
        &AdministratorUpdate {
            name: "netops".to_owned(),
            password_hash: None,
            role: Role::ReadOnly,
            enabled: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(demoted.role.0, Role::ReadOnly);
    assert!(!demoted.enabled);
    assert!(!demoted.role.0.can_edit());

    let error = admins::update(
        &mut conn,
        &admin,
        created.id,
        1,
        &AdministratorUpdate {
            name: "netops".to_owned(),
            password_hash: None,
            role: Role::Administrator,
            enabled: true,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(error, DbError::Stale { .. }), "{error}");
    assert_eq!(
        admins::get(&pool, created.id).await.unwrap().role.0,
        Role::ReadOnly
    );

    admins::delete(&mut conn, &admin, created.id, Some(2))
        .await
        .unwrap();
    assert_eq!(admins::list(&pool, Page::ALL).await.unwrap().total, 0);
}

#[tokio::test]
async fn api_sessions_are_found_by_token_refreshed_and_revoked_and_logins_are_audited() {
    let pool = support::fresh_database().await;
    let mut conn = pool.acquire().await.unwrap();
    let administrator = admins::create(
        &mut conn,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        &AdministratorInput {
            name: "api".to_owned(),
            password_hash: PasswordHash::new("pw").unwrap(),
            role: Role::Administrator,
            enabled: true,
        },
    )
    .await
    .unwrap();
    let now = OffsetDateTime::now_utc();
    let tokens = SessionTokens {
        access_token: "access-1",
        refresh_token: "refresh-1",
        access_expires_at: now + Duration::minutes(30),
        refresh_expires_at: now + Duration::hours(1),
    };
    let session = admins::open_session(
        &mut conn,
        &administrator,
        Some("198.51.100.7".parse().unwrap()),
        &tokens,
    )
    .await
    .unwrap();
    assert_eq!(
        session.source_address.0,
        Some("198.51.100.7".parse().unwrap())
    );
    assert!(
        admins::get(&pool, administrator.id)
            .await
            .unwrap()
            .last_login_at
            .is_some()
    );

    // Only digests are stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT access_token_sha256 FROM api_sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert_ne!(stored, b"access-1");

    assert_eq!(
        admins::session_by_access_token(&pool, "access-1", now)
            .await
            .unwrap()
            .map(|s| s.id),
        Some(session.id)
    );
    assert!(
        admins::session_by_access_token(&pool, "access-2", now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        admins::session_by_access_token(&pool, "access-1", now + Duration::hours(2))
            .await
            .unwrap()
            .is_none()
    );

    let renewed = SessionTokens {
        access_token: "access-2",
        refresh_token: "refresh-2",
        access_expires_at: now + Duration::minutes(60),
        refresh_expires_at: now + Duration::hours(2),
    };
    assert!(
        admins::refresh_session(&pool, "access-1", "wrong", now, &renewed)
            .await
            .unwrap()
            .is_none()
    );
    let refreshed = admins::refresh_session(&pool, "access-1", "refresh-1", now, &renewed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refreshed.refresh_count, 1);
    assert!(
        admins::session_by_access_token(&pool, "access-1", now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        admins::session_by_access_token(&pool, "access-2", now)
            .await
            .unwrap()
            .is_some()
    );

    admins::revoke_session(&pool, session.id).await.unwrap();
    assert!(
        admins::session_by_access_token(&pool, "access-2", now)
            .await
            .unwrap()
            .is_none()
    );

    let logins = audit::list(
        &pool,
        &AuditFilter {
            action: Some(AuditAction::Login),
            ..AuditFilter::default()
        },
        Page::ALL,
    )
    .await
    .unwrap();
    assert_eq!(logins.total, 1);
    assert_eq!(logins.items[0].actor, "api");
    assert_eq!(
        logins.items[0].source_address.0,
        Some("198.51.100.7".parse().unwrap())
    );
}

#[tokio::test]
async fn a_refused_login_is_audited_with_the_name_tried_and_where_from() {
    let pool = support::fresh_database().await;
    audit::login_failed(
        &pool,
        "mallory",
        Some("203.0.113.9".parse().unwrap()),
        "wrong password",
    )
    .await
    .unwrap();
    let rows = audit::list(
        &pool,
        &AuditFilter {
            action: Some(AuditAction::LoginFailed),
            ..AuditFilter::default()
        },
        Page::ALL,
    )
    .await
    .unwrap();
    assert_eq!(rows.total, 1);
    assert_eq!(rows.items[0].actor, "mallory");
    assert_eq!(rows.items[0].actor_id, None);
    assert_eq!(
        rows.items[0].source_address.0,
        Some("203.0.113.9".parse().unwrap())
    );
    assert_eq!(rows.items[0].detail.as_deref(), Some("wrong password"));
}

fn new_administrator(name: &str, password: &str, role: Role) -> NewAdministrator {
    NewAdministrator {
        name: name.to_owned(),
        password: password.to_owned(),
        confirmation: Some(password.to_owned()),
        role,
    }
}

fn refused_fields(error: AdministratorError) -> Vec<administrators::Field> {
    match error {
        AdministratorError::Refused(ChangeError::Invalid(problems)) => {
            problems.iter().map(|p| p.field).collect()
        }
        other => panic!("not a broken rule: {other}"),
    }
}

#[tokio::test]
async fn the_first_administrator_is_created_once_and_by_the_account_rules() {
    let pool = support::fresh_database().await;
    assert!(administrators::first_run(&pool).await.unwrap());
    let mut typo = new_administrator("admin", "Sup3r-secret!", Role::ReadOnly);
    typo.confirmation = Some("Sup3r-secreT!".to_owned());
    let error = administrators::create_first(&pool, GLOBAL_DOMAIN_ID, &typo)
        .await
        .unwrap_err();
    assert_eq!(refused_fields(error), [administrators::Field::Confirmation]);
    let first = administrators::create_first(
        &pool,
        GLOBAL_DOMAIN_ID,
        &new_administrator(" admin ", "Sup3r-secret!", Role::ReadOnly),
    )
    .await
    .unwrap();
    assert_eq!(first.name, "admin");
    assert_eq!(
        first.role.0,
        Role::Administrator,
        "the first one administers"
    );
    assert!(first.password_hash.verify("Sup3r-secret!"));
    assert!(!administrators::first_run(&pool).await.unwrap());
    let again = administrators::create_first(
        &pool,
        GLOBAL_DOMAIN_ID,
        &new_administrator("intruder", "Sup3r-secret!", Role::Administrator),
    )
    .await
    .unwrap_err();
    assert!(matches!(again, AdministratorError::SetUpAlready), "{again}");
}

#[tokio::test]
async fn an_administrator_name_over_64_characters_is_refused_by_the_rule_before_the_database() {
    let pool = support::fresh_database().await;
    let actor = support::admin();
    let long = new_administrator(&"a".repeat(65), "1234567", Role::ReadOnly);
    let error = administrators::create(&pool, &actor, GLOBAL_DOMAIN_ID, &long)
        .await
        .unwrap_err();
    assert_eq!(
        refused_fields(error),
        [administrators::Field::Name, administrators::Field::Password]
    );
    let fine = new_administrator(&"a".repeat(64), "Sup3r-secret!", Role::NetworkAdmin);
    let created = administrators::create(&pool, &actor, GLOBAL_DOMAIN_ID, &fine)
        .await
        .unwrap();
    assert_eq!(created.role.0, Role::NetworkAdmin);
    let clash = administrators::create(&pool, &actor, GLOBAL_DOMAIN_ID, &fine)
        .await
        .unwrap_err();
    assert!(
        matches!(
            clash,
            AdministratorError::Refused(ChangeError::Db(DbError::Conflict { .. }))
        ),
        "{clash}"
    );
}

#[tokio::test]
async fn a_session_token_is_honoured_while_its_administrator_is_enabled_and_refreshed_three_times_at_most()
 {
    let pool = support::fresh_database().await;
    let admin = administrators::create(
        &pool,
        &support::admin(),
        GLOBAL_DOMAIN_ID,
        &new_administrator("api-user", "Sup3r-secret!", Role::Administrator),
    )
    .await
    .unwrap();
    let tokens = sessions::open_api_session(&pool, &admin, None)
        .await
        .unwrap();
    assert!(
        !format!("{tokens:?}").contains(&tokens.access),
        "no token in Debug"
    );
    let found = sessions::authenticated(&pool, &tokens.access)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.administrator.id, admin.id);
    assert!(sessions::authenticated(&pool, "").await.unwrap().is_none());

    let mut current = tokens;
    for _ in 0..sessions::MAX_REFRESHES {
        current = sessions::refresh_api_session(&pool, &current.access, &current.refresh)
            .await
            .unwrap();
    }
    let error = sessions::refresh_api_session(&pool, &current.access, &current.refresh)
        .await
        .unwrap_err();
    assert!(matches!(error, SessionError::TooManyRefreshes), "{error}");
    assert!(
        sessions::authenticated(&pool, &current.access)
            .await
            .unwrap()
            .is_none(),
        "the session ended"
    );

    let ui = sessions::open_ui_session(&pool, &admin, None)
        .await
        .unwrap();
    assert!(
        sessions::authenticated(&pool, &ui.access)
            .await
            .unwrap()
            .is_some()
    );
    let mut conn = pool.acquire().await.unwrap();
    admins::update(
        &mut conn,
        &support::admin(),
        admin.id,
        admin.version,
        &AdministratorUpdate {
            name: admin.name.clone(),
            password_hash: None,
            role: Role::Administrator,
            enabled: false,
        },
    )
    .await
    .unwrap();
    assert!(
        sessions::authenticated(&pool, &ui.access)
            .await
            .unwrap()
            .is_none(),
        "a disabled administrator's session is not honoured"
    );
}
