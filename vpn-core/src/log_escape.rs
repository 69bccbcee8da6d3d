//! Attacker-controlled text in log and syslog lines.
//!
//! A username, a group name typed by the client, a user agent, a device id or a
//! certificate field is shown through [`escaped`] in every log line: control characters
//! (newlines, carriage returns, escapes, NUL...) and the Unicode line and paragraph
//! separators are written as Rust-style escapes (`\n`, `\r`, `\t`, `\u{1b}`), so a value
//! can never end a line and start a forged one ("AAA user authentication Successful").
//! Printable text, backslashes included (`DOMAIN\user`), is shown as typed.

use std::fmt;

/// `text` as it may appear inside a log line.
pub fn escaped(text: &str) -> Escaped<'_> {
    Escaped(text)
}

/// Displays its text with control characters escaped (see the module).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(needs_escape) {
            let (plain, tail) = rest.split_at(at);
            f.write_str(plain)?;
            let mut chars = tail.chars();
            if let Some(c) = chars.next() {
                match c {
                    '\n' => f.write_str("\\n")?,
                    '\r' => f.write_str("\\r")?,
                    '\t' => f.write_str("\\t")?,
                    other => write!(f, "\\u{{{:x}}}", u32::from(other))?,
                }
            }
            rest = chars.as_str();
        }
        f.write_str(rest)
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_control_characters_are_shown_escaped() {
        let forged = "bob\nMay 1 12:00:00 FTD %FTD-6-113004: AAA user authentication Successful : user = admin";
        let shown = escaped(forged).to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.starts_with("bob\\nMay 1"), "{shown}");
        assert_eq!(
            escaped("a\r\tb\u{1b}[31m\0").to_string(),
            "a\\r\\tb\\u{1b}[31m\\u{0}"
        );
        assert_eq!(
            escaped("x\u{2028}y\u{85}z").to_string(),
            "x\\u{2028}y\\u{85}z"
        );
    }

    #[test]
    fn printable_text_is_shown_as_typed() {
        for text in ["alice", "DOMAIN\\user", "Zoë Ünïcode 用户", "a b<c>&d", ""] {
            assert_eq!(escaped(text).to_string(), text);
        }
    }

    proptest::proptest! {
        #[test]
        fn no_escaped_text_contains_a_line_break(text in ".*") {
            let shown = escaped(&text).to_string();
            proptest::prop_assert!(!shown.chars().any(needs_escape));
        }
    }
}
