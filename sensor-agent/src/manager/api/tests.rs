//! The management API's router without a socket or TLS: what it logs per request.

use axum::body::Body;
use serde_json::json;
use tokio::sync::watch;
use tracing::level_filters::LevelFilter;
use uuid::Uuid;
use vpn_core::pool::PoolSet;

use super::*;
use crate::config_store::{ConfigStore, Deployer, nothing_applied};
use crate::manager::{AgentHandles, ManagerChannel};
use crate::sessions::{SessionDb, SessionDbSettings};
use crate::testing::deployable_sample;
use crate::testing::logs::Logs;

/// A fresh sensor's management channel on `dir`, not listening anywhere.
fn channel_on(dir: &std::path::Path) -> Channel {
    let store = ConfigStore::open(dir).unwrap();
    let config = Arc::new(nothing_applied());
    let pools = PoolSet::from_device_config(&config).unwrap();
    let sessions = SessionDb::new(pools, SessionDbSettings::default());
    let (sender, receiver) = watch::channel(config);
    let agent = AgentHandles {
        deployer: Arc::new(Deployer::new(store, sender, sessions.clone())),
        sessions,
        config: receiver,
    };
    ManagerChannel::open(dir, "ftd-test", agent, OffsetDateTime::now_utc()).unwrap()
}

/// The deployable sample configuration for `device_id` at `version`.
fn document(device_id: Uuid, version: u64) -> Vec<u8> {
    let mut value = deployable_sample();
    value["device_id"] = json!(device_id.to_string());
    value["version"] = json!(version);
    serde_json::to_vec(&value).unwrap()
}

/// Pushes `document` through the API router as the manager from 192.0.2.9:41000.
async fn push(router: &axum::Router, document: Vec<u8>) -> StatusCode {
    let mut request = axum::http::Request::post(paths::CONFIG)
        .header("content-type", "application/json")
        .body(Body::from(document))
        .unwrap();
    request.extensions_mut().insert(Caller {
        peer: "192.0.2.9:41000".parse().unwrap(),
        manager: true,
    });
    router.clone().oneshot(request).await.unwrap().status()
}

#[tokio::test]
async fn a_push_is_logged_in_a_management_request_span_with_the_offered_version() {
    let dir = tempfile::tempdir().unwrap();
    let router = router(channel_on(dir.path()));
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber(LevelFilter::INFO));
    // Callsites first hit by other tests while no subscriber listened cached "never"; ask again.
    tracing::callsite::rebuild_interest_cache();
    let device_id = Uuid::new_v4();

    assert_eq!(push(&router, document(device_id, 7)).await, 200);
    assert_eq!(push(&router, document(device_id, 5)).await, 409);

    let spans = logs.spans("management_request");
    assert_eq!(spans.len(), 2, "{spans:?}");
    for (span, (version, status)) in spans.iter().zip([("7", "200"), ("5", "409")]) {
        assert_eq!(span.fields["method"], "POST");
        assert_eq!(span.fields["route"], paths::CONFIG);
        assert_eq!(span.fields["peer"], "192.0.2.9:41000");
        assert_eq!(span.fields["version"], version);
        assert_eq!(span.fields["status"], status);
    }
    let refused = logs.event("deploy refused");
    assert_eq!(refused.spans.len(), 1);
    assert_eq!(refused.spans[0].fields["version"], "5");
}
