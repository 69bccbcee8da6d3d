//! Both doors, one rule: the same wrong input through the REST API and through the web
//! UI is refused with the same rule's message, the one the domain service gives (the
//! API prefixes it with the FMC field path, the UI shows it as a sentence beside the
//! form field).

use std::net::Ipv4Addr;

use mgmt_server::db::pools::Ipv4AddressPoolInput;
use mgmt_server::objects::local_users::{self, LocalUserChange};
use mgmt_server::objects::pools;
use mgmt_server::rules::{Field, Problem};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api::{Api, messages};
use crate::ui::{Ui, field_error};

/// What the UI shows for a service message (capitalised, with a full stop).
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let first = chars
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    let mut text = first + chars.as_str();
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

fn rest_text<F: Field>(problem: &Problem<F>) -> String {
    format!("{}: {}", problem.field.fmc_path(), problem.message)
}

#[tokio::test]
async fn a_pool_that_starts_after_it_ends_under_a_holey_mask_gets_the_same_answer_from_both_doors()
{
    let input = Ipv4AddressPoolInput {
        name: "BAD-POOL".to_owned(),
        description: String::new(),
        start: Ipv4Addr::new(10, 0, 0, 20),
        end: Ipv4Addr::new(10, 0, 0, 10),
        mask: Ipv4Addr::new(255, 0, 255, 0),
        overridable: false,
    };
    let problems = pools::check_ipv4(&input).into_vec();
    assert_eq!(
        problems.iter().map(|p| p.field).collect::<Vec<_>>(),
        [pools::Field::Mask, pools::Field::Ipv4Range]
    );

    let api = Api::start().await;
    let token = api.login("admin").await;
    let (status, body, _) = api
        .call(
            &token,
            Method::POST,
            "/object/ipv4addresspools",
            Some(json!({ "name": "BAD-POOL", "ipAddressRange": "10.0.0.20-10.0.0.10", "mask": "255.0.255.0" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let rest = messages(&body);
    for problem in &problems {
        assert!(rest.contains(&rest_text(problem)), "{rest}");
    }

    let ui = Ui::start().await;
    let page = ui.get("/objects/pools").await;
    let shown = ui
        .post(
            &page,
            "/objects/pools",
            &[
                ("family", "ipv4"),
                ("name", "BAD-POOL"),
                ("range", "10.0.0.20-10.0.0.10"),
                ("mask", "255.0.255.0"),
            ],
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(
        field_error(&shown.html, "mask"),
        Some(sentence(&problems[0].message))
    );
    assert_eq!(
        field_error(&shown.html, "range"),
        Some(sentence(&problems[1].message))
    );
}

#[tokio::test]
async fn a_group_policy_with_a_zero_idle_timeout_gets_the_same_answer_from_both_doors() {
    let mut input = mgmt_server::db::group_policies::GroupPolicyInput::new("GP-IDLE");
    input.idle_timeout_minutes = Some(0);
    let problems = mgmt_server::objects::group_policies::check(&input);
    assert_eq!(problems.len(), 1);

    let api = Api::start().await;
    let token = api.login("admin").await;
    let (status, body, _) = api
        .call(
            &token,
            Method::POST,
            "/object/grouppolicies",
            Some(json!({ "name": "GP-IDLE", "advancedSettings": { "sessionSettings": { "vpnIdleTimeout": 0 } } })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(messages(&body).contains(&rest_text(&problems[0])), "{body}");

    let ui = Ui::start().await;
    let page = ui.get("/objects/group-policies").await;
    let shown = ui
        .post(
            &page,
            "/objects/group-policies",
            &[
                ("name", "GP-IDLE"),
                ("simultaneous_logins", "3"),
                ("idle_timeout", "0"),
            ],
        )
        .await;
    assert_eq!(
        field_error(&shown.html, "idle_timeout"),
        Some(sentence(&problems[0].message))
    );
}

#[tokio::test]
async fn a_local_user_without_a_password_is_refused_by_the_service_the_ui_calls() {
    let change = LocalUserChange {
        name: "alice".to_owned(),
        password: None,
    };
    let problems = local_users::check(&change, true).into_vec();
    assert_eq!(problems.len(), 1);
    let ui = Ui::start().await;
    let page = ui.get("/objects/local-users").await;
    let shown = ui
        .post(
            &page,
            "/objects/local-users",
            &[("name", "alice"), ("password", "")],
        )
        .await;
    assert_eq!(
        field_error(&shown.html, "password"),
        Some(sentence(&problems[0].message))
    );
    let listed = local_users::list(
        ui.pool(),
        mgmt_server::db::GLOBAL_DOMAIN_ID,
        mgmt_server::db::Page::ALL,
    )
    .await
    .unwrap();
    assert!(listed.items.is_empty(), "nothing was stored");
}
