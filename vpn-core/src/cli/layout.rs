//! Column layout and time formats shared by the FTD renderers.

use std::fmt::Write as _;

use time::{Duration, Month, OffsetDateTime, UtcOffset, Weekday};

/// Width of a session field label (`Username     : `): 13 characters, then `: `.
const LABEL_WIDTH: usize = 13;
/// Width of a left-column value before the right column starts; values that are
/// longer still get one space before the right label.
const LEFT_VALUE_WIDTH: usize = 22;

/// Accumulates output lines; never emits trailing whitespace.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    text: String,
}

impl Lines {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// One output line. Control characters (a newline in a certificate-derived
    /// username, an escape sequence) are shown as `?`, so a value can never forge
    /// extra lines or drive the operator's terminal.
    pub(crate) fn line(&mut self, line: impl AsRef<str>) {
        let clean: String = line
            .as_ref()
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        self.text.push_str(clean.trim_end());
        self.text.push('\n');
    }

    pub(crate) fn blank(&mut self) {
        self.text.push('\n');
    }

    /// `Label        : value`, indented by `indent` spaces.
    pub(crate) fn field(&mut self, indent: usize, label: &str, value: impl std::fmt::Display) {
        let mut line = String::new();
        let _ = write!(line, "{:indent$}{label:<LABEL_WIDTH$}: {value}", "");
        self.line(line);
    }

    /// Two fields on one line, the right one starting at a fixed column.
    pub(crate) fn pair(
        &mut self,
        indent: usize,
        left: (&str, &dyn std::fmt::Display),
        right: (&str, &dyn std::fmt::Display),
    ) {
        let mut line = String::new();
        let _ = write!(
            line,
            "{:indent$}{:<LABEL_WIDTH$}: {:<LEFT_VALUE_WIDTH$} {:<LABEL_WIDTH$}: {}",
            "",
            left.0,
            left.1.to_string(),
            right.0,
            right.1
        );
        self.line(line);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub(crate) fn append(&mut self, other: Self) {
        self.text.push_str(&other.text);
    }

    pub(crate) fn into_string(self) -> String {
        self.text
    }
}

/// `0h:21m:00s`, or `1d 2h:03m:04s` from one day on. Negative spans show as zero.
pub(crate) fn duration(span: Duration) -> String {
    let total = span.whole_seconds().max(0);
    let days = total / 86_400;
    let hours = (total % 86_400) / 3_600;
    let minutes = (total % 3_600) / 60;
    let seconds = total % 60;
    if days > 0 {
        format!("{days}d {hours}h:{minutes:02}m:{seconds:02}s")
    } else {
        format!("{hours}h:{minutes:02}m:{seconds:02}s")
    }
}

/// `07:18:53 UTC Wed Mar 19 2025`.
pub(crate) fn login_time(at: OffsetDateTime) -> String {
    let utc = at.to_offset(UtcOffset::UTC);
    format!(
        "{:02}:{:02}:{:02} UTC {} {} {} {}",
        utc.hour(),
        utc.minute(),
        utc.second(),
        weekday(utc.weekday()),
        month(utc.month()),
        utc.day(),
        utc.year()
    )
}

fn weekday(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    }
}

fn month(month: Month) -> &'static str {
    match month {
        Month::January => "Jan",
        Month::February => "Feb",
        Month::March => "Mar",
        Month::April => "Apr",
        Month::May => "May",
        Month::June => "Jun",
        Month::July => "Jul",
        Month::August => "Aug",
        Month::September => "Sep",
        Month::October => "Oct",
        Month::November => "Nov",
        Month::December => "Dec",
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn durations_print_hours_unpadded_and_minutes_seconds_padded() {
        assert_eq!(duration(Duration::minutes(21)), "0h:21m:00s");
        assert_eq!(
            duration(Duration::seconds(12 * 3600 + 51 * 60 + 51)),
            "12h:51m:51s"
        );
        assert_eq!(
            duration(Duration::seconds(86_400 + 2 * 3600 + 3 * 60 + 4)),
            "1d 2h:03m:04s"
        );
    }

    #[test]
    fn negative_duration_from_clock_skew_prints_as_zero() {
        assert_eq!(duration(Duration::seconds(-5)), "0h:00m:00s");
    }

    #[test]
    fn login_time_is_printed_in_utc_like_the_seed() {
        assert_eq!(
            login_time(datetime!(2025-03-19 07:18:53 UTC)),
            "07:18:53 UTC Wed Mar 19 2025"
        );
        assert_eq!(
            login_time(datetime!(2025-03-19 16:18:53 +09:00)),
            "07:18:53 UTC Wed Mar 19 2025"
        );
        assert_eq!(
            login_time(datetime!(2023-10-06 05:06:11 UTC)),
            "05:06:11 UTC Fri Oct 6 2023"
        );
    }

    #[test]
    fn control_characters_in_values_cannot_forge_lines() {
        let mut lines = Lines::new();
        lines.field(0, "Username", "evil\nUsername     : admin\u{1b}[2J");
        assert_eq!(
            lines.into_string(),
            "Username     : evil?Username     : admin?[2J\n"
        );
    }

    #[test]
    fn pair_keeps_one_space_before_the_right_label_for_long_values() {
        let mut lines = Lines::new();
        lines.pair(
            0,
            ("Group Policy", &"a-very-long-group-policy-name"),
            ("Tunnel Group", &"TG"),
        );
        assert_eq!(
            lines.into_string(),
            "Group Policy : a-very-long-group-policy-name Tunnel Group : TG\n"
        );
    }
}
