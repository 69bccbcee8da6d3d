use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, StatusCode, header};
use axum::routing::get;
use tower::ServiceExt as _;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

use super::*;
use crate::api::{self, ApiContext};
use crate::db::admins::{self, AdministratorInput, Role};
use crate::db::{Actor, EncryptionKey, GLOBAL_DOMAIN_ID, PasswordHash};
use crate::services::Services;
use crate::ui::{self, SESSION_COOKIE, UiContext};

const PASSWORD: &str = "Sup3r-secret!";

#[test]
fn a_short_request_id_of_safe_characters_is_kept() {
    let mut headers = HeaderMap::new();
    headers.insert(&REQUEST_ID_HEADER, HeaderValue::from_static("lb-7f3a.2_x"));
    assert_eq!(request_id(&headers), "lb-7f3a.2_x");
}

#[test]
fn a_long_or_unsafe_request_id_is_replaced_by_a_fresh_one() {
    let too_long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
    for sent in [too_long.as_str(), "", "a b", "a\"b", "id;drop", "ümlaut"] {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(sent) {
            headers.insert(&REQUEST_ID_HEADER, value);
        }
        let id = request_id(&headers);
        assert_ne!(id, sent);
        assert!(Uuid::parse_str(&id).is_ok(), "{id} is not a fresh id");
    }
    assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
}

#[tokio::test]
async fn a_request_span_names_the_route_template_and_its_id_goes_back_to_the_client() {
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    // Callsites first hit by other tests while no subscriber listened cached "never"; ask again.
    tracing::callsite::rebuild_interest_cache();
    let router = traced(Router::new().route(
        "/things/{id}",
        get(|| async {
            record_actor("alice");
            tracing::info!("thing shown");
        }),
    ));
    let response = router
        .oneshot(
            Request::get("/things/42?color=red")
                .header(&REQUEST_ID_HEADER, "from-the-balancer")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[&REQUEST_ID_HEADER], "from-the-balancer");
    let span = logs.only_span("http_request");
    assert_eq!(span["method"], "GET");
    assert_eq!(span["route"], "/things/{id}");
    assert_eq!(span["request_id"], "from-the-balancer");
    assert_eq!(span["actor"], "alice");
    assert_eq!(span["status"], "200");
    assert!(span.contains_key("latency_ms"));
    let event = logs.event("thing shown");
    assert_eq!(event.spans, ["http_request"]);
    assert!(!logs.text().contains("color=red"));
}

#[tokio::test]
async fn a_rest_call_is_traced_with_its_administrator_and_never_its_token() {
    let pool = e2e::postgres::fresh_database().await;
    create_admin(&pool).await;
    let key = EncryptionKey::generate().unwrap();
    let services = Services::start(pool.clone(), key.clone(), "fmc-test")
        .await
        .unwrap();
    let router = api::router(ApiContext::new(pool, services, key, 1000));
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    // Callsites first hit by other tests while no subscriber listened cached "never"; ask again.
    tracing::callsite::rebuild_interest_cache();

    let login = router
        .clone()
        .oneshot(
            Request::post("/api/fmc_platform/v1/auth/generatetoken")
                .header(header::AUTHORIZATION, basic("admin", PASSWORD))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::NO_CONTENT);
    let token = login.headers()["X-auth-access-token"]
        .to_str()
        .unwrap()
        .to_owned();
    let path = format!(
        "/api/fmc_config/v1/domain/{GLOBAL_DOMAIN_ID}/object/ipv4addresspools/{}?expanded=true",
        Uuid::new_v4()
    );
    let read = router
        .oneshot(
            Request::get(&path)
                .header("X-auth-access-token", &token)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::NOT_FOUND);
    let sent_id = read.headers()[&REQUEST_ID_HEADER].to_str().unwrap();

    let spans = logs.spans("http_request");
    assert_eq!(spans.len(), 2, "{spans:?}");
    let (login_span, read_span) = (&spans[0], &spans[1]);
    assert_eq!(login_span["method"], "POST");
    assert_eq!(
        login_span["route"],
        "/api/fmc_platform/v1/auth/generatetoken"
    );
    assert_eq!(login_span["actor"], "admin");
    assert_eq!(login_span["status"], "204");
    assert_eq!(read_span["method"], "GET");
    assert_eq!(
        read_span["route"],
        "/api/fmc_config/v1/domain/{domain}/object/ipv4addresspools/{id}"
    );
    assert_eq!(read_span["request_id"], sent_id);
    assert_eq!(read_span["actor"], "admin");
    assert_eq!(read_span["status"], "404");
    assert_ne!(login_span["request_id"], read_span["request_id"]);
    let text = logs.text();
    for secret in [token.as_str(), PASSWORD, "Basic "] {
        assert!(!text.contains(secret), "the logs contain {secret:?}");
    }
}

#[tokio::test]
async fn a_ui_page_is_traced_with_the_administrator_of_its_session_cookie() {
    let pool = e2e::postgres::fresh_database().await;
    create_admin(&pool).await;
    let key = EncryptionKey::generate().unwrap();
    let services = Services::start(pool.clone(), key.clone(), "fmc-test")
        .await
        .unwrap();
    let router = ui::router(UiContext::new(pool, key, services));
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    // Callsites first hit by other tests while no subscriber listened cached "never"; ask again.
    tracing::callsite::rebuild_interest_cache();

    let mut login = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("name=admin&password={PASSWORD}")))
        .unwrap();
    login
        .extensions_mut()
        .insert(ConnectInfo(std::net::SocketAddr::from((
            [192, 0, 2, 7],
            50_000,
        ))));
    let login = router.clone().oneshot(login).await.unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with(SESSION_COOKIE));
    let page = router
        .oneshot(
            Request::builder()
                .method(Method::GET)
                .uri("/devices")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers().contains_key(&REQUEST_ID_HEADER));

    let spans = logs.spans("http_request");
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!(spans[0]["route"], "/login");
    assert_eq!(spans[0]["actor"], "admin");
    assert_eq!(spans[1]["route"], "/devices");
    assert_eq!(spans[1]["actor"], "admin");
    assert_eq!(spans[1]["status"], "200");
    let session_token = cookie.split_once('=').unwrap().1;
    let text = logs.text();
    for secret in [session_token, PASSWORD] {
        assert!(!text.contains(secret), "the logs contain {secret:?}");
    }
}

async fn create_admin(pool: &sqlx::PgPool) {
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
}

fn basic(name: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    format!("Basic {encoded}")
}

/// Spans (with every field they were given) and events, kept in memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Captured>>);

#[derive(Default)]
struct Captured {
    spans: Vec<(String, HashMap<String, String>)>,
    ids: HashMap<Id, usize>,
    events: Vec<CapturedEvent>,
}

#[derive(Debug, Clone)]
struct CapturedEvent {
    fields: HashMap<String, String>,
    /// Names of the spans the event was in, outermost first.
    spans: Vec<String>,
}

impl Logs {
    fn subscriber(&self) -> impl Subscriber + Send + Sync + 'static {
        tracing_subscriber::registry().with(self.clone())
    }

    fn spans(&self, name: &str) -> Vec<HashMap<String, String>> {
        let captured = self.0.lock().unwrap();
        captured
            .spans
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, fields)| fields.clone())
            .collect()
    }

    fn only_span(&self, name: &str) -> HashMap<String, String> {
        let mut spans = self.spans(name);
        assert_eq!(spans.len(), 1, "{spans:?}");
        spans.remove(0)
    }

    fn event(&self, message: &str) -> CapturedEvent {
        let captured = self.0.lock().unwrap();
        captured
            .events
            .iter()
            .find(|e| e.fields.get("message").map(String::as_str) == Some(message))
            .cloned()
            .unwrap_or_else(|| panic!("no event {message:?}"))
    }

    /// Every span name, field and event, as one text to search for secrets.
    fn text(&self) -> String {
        let captured = self.0.lock().unwrap();
        let spans = captured.spans.iter().map(|(name, fields)| (name, fields));
        let events = captured.events.iter().map(|e| (&e.spans[..], &e.fields));
        let mut text = String::new();
        for (name, fields) in spans {
            text.push_str(&format!("{name} {fields:?}\n"));
        }
        for (scope, fields) in events {
            text.push_str(&format!("{scope:?} {fields:?}\n"));
        }
        text
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Logs {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = Fields::default();
        attributes.record(&mut fields);
        let mut captured = self.0.lock().unwrap();
        let at = captured.spans.len();
        captured
            .spans
            .push((attributes.metadata().name().to_owned(), fields.0));
        captured.ids.insert(id.clone(), at);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut captured = self.0.lock().unwrap();
        if let Some(&at) = captured.ids.get(id) {
            captured.spans[at].1.extend(fields.0);
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let spans = context
            .event_scope(event)
            .map(|scope| scope.from_root().map(|s| s.name().to_owned()).collect())
            .unwrap_or_default();
        self.0.lock().unwrap().events.push(CapturedEvent {
            fields: fields.0,
            spans,
        });
    }
}

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}
