//! How the manager writes its log lines: every field value goes through
//! [`vpn_core::log_escape::escaped`], so a value a client chose (a Basic-auth user name,
//! a form field, a header) can never end a line and start a forged one.

use std::fmt;

use tracing::field::Field;
use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::format::{FormatFields, Writer, debug_fn};
use vpn_core::log_escape::escaped;

/// The field formatter of the manager's log: `message` first as text, then
/// `name=value` pairs, each value escaped.
pub fn escaping_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(
        |writer: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug| {
            let text = format!("{value:?}");
            if field.name() == "message" {
                write!(writer, "{}", escaped(&text))
            } else {
                write!(writer, "{}={}", field.name(), escaped(&text))
            }
        },
    )
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_user_name_with_a_newline_stays_on_its_own_log_line() {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(escaping_fields())
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let name = "admin\n2026-12-06T10:00:00Z  INFO login accepted user=admin";
            tracing::warn!(user = %name, door = "REST API", "login refused");
        });
        let text = String::from_utf8(lines.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(r"login refused user=admin\n2026-12-06T10:00:00Z  INFO login accepted"),
            "{text}"
        );
        assert!(text.contains(r#"door="REST API""#), "{text}");
    }
}
