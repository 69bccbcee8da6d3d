//! Log capture for tests: spans with every field they were given, and events with the
//! names of the spans they were in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// What was logged, kept in memory.
#[derive(Clone, Default)]
pub(crate) struct Logs(Arc<Mutex<Captured>>);

#[derive(Default)]
struct Captured {
    spans: Vec<CapturedSpan>,
    ids: HashMap<Id, usize>,
    events: Vec<CapturedEvent>,
}

#[derive(Debug, Clone)]
pub(crate) struct CapturedSpan {
    pub(crate) name: String,
    pub(crate) fields: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub(crate) struct CapturedEvent {
    pub(crate) fields: HashMap<String, String>,
    /// The spans the event was in, outermost first.
    pub(crate) spans: Vec<CapturedSpan>,
}

impl Logs {
    /// A subscriber that keeps everything up to `level` here.
    pub(crate) fn subscriber(&self, level: LevelFilter) -> impl Subscriber + Send + Sync {
        tracing_subscriber::registry().with(self.clone().with_filter(level))
    }

    pub(crate) fn spans(&self, name: &str) -> Vec<CapturedSpan> {
        self.captured()
            .spans
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }

    /// The first event with this message.
    pub(crate) fn event(&self, message: &str) -> CapturedEvent {
        self.captured()
            .events
            .iter()
            .find(|e| e.fields.get("message").map(String::as_str) == Some(message))
            .cloned()
            .unwrap_or_else(|| panic!("no event {message:?}"))
    }

    /// The message of every event, in order.
    pub(crate) fn messages(&self) -> Vec<String> {
        self.captured()
            .events
            .iter()
            .filter_map(|e| e.fields.get("message").cloned())
            .collect()
    }

    fn captured(&self) -> MutexGuard<'_, Captured> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Logs {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = Fields::default();
        attributes.record(&mut fields);
        let mut captured = self.captured();
        let at = captured.spans.len();
        captured.spans.push(CapturedSpan {
            name: attributes.metadata().name().to_owned(),
            fields: fields.0,
        });
        captured.ids.insert(id.clone(), at);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut captured = self.captured();
        if let Some(&at) = captured.ids.get(id)
            && let Some(span) = captured.spans.get_mut(at)
        {
            span.fields.extend(fields.0);
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut captured = self.captured();
        let spans = context
            .event_scope(event)
            .map(|scope| {
                scope
                    .from_root()
                    .filter_map(|span| captured.ids.get(&span.id()).copied())
                    .filter_map(|at| captured.spans.get(at).cloned())
                    .collect()
            })
            .unwrap_or_default();
        captured.events.push(CapturedEvent {
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
