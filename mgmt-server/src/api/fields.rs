//! Reading a JSON request body field by field, collecting every problem with the
//! field's path, so one answer lists everything that is wrong.

use std::str::FromStr;

use serde_json::Value;
use uuid::Uuid;

use super::error::ApiError;

/// A request body and the problems found so far.
#[derive(Debug)]
pub struct Fields<'a> {
    body: &'a Value,
    problems: Vec<String>,
}

impl<'a> Fields<'a> {
    pub fn new(body: &'a Value) -> Result<Self, ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        }
        Ok(Self {
            body,
            problems: Vec::new(),
        })
    }

    /// The value at a dotted path, if present and not null.
    pub fn get(&self, path: &str) -> Option<&'a Value> {
        let mut value = self.body;
        for part in path.split('.') {
            value = value.get(part)?;
        }
        (!value.is_null()).then_some(value)
    }

    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(message.into());
    }

    pub fn required_str(&mut self, path: &str) -> String {
        match self.get(path) {
            Some(Value::String(text)) if !text.trim().is_empty() => text.trim().to_owned(),
            Some(Value::String(_)) | None => {
                self.problem(format!("{path}: is required"));
                String::new()
            }
            Some(other) => {
                self.problem(format!("{path}: must be a string, not {other}"));
                String::new()
            }
        }
    }

    pub fn optional_str(&mut self, path: &str) -> Option<String> {
        match self.get(path) {
            None => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => {
                self.problem(format!("{path}: must be a string, not {other}"));
                None
            }
        }
    }

    pub fn string_or(&mut self, path: &str, default: &str) -> String {
        self.optional_str(path)
            .unwrap_or_else(|| default.to_owned())
    }

    pub fn bool_or(&mut self, path: &str, default: bool) -> bool {
        match self.get(path) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(text)) if super::envelope::parse_bool(text).is_some() => {
                super::envelope::parse_bool(text).unwrap_or(default)
            }
            Some(other) => {
                self.problem(format!("{path}: must be true or false, not {other}"));
                default
            }
        }
    }

    /// A whole number from `min` to `max`.
    pub fn number(&mut self, path: &str, min: u64, max: u64) -> Option<u64> {
        let value = self.get(path)?;
        let number = value
            .as_u64()
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()));
        match number {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.problem(format!(
                    "{path}: must be a whole number from {min} to {max}, not {value}"
                ));
                None
            }
        }
    }

    pub fn number_or(&mut self, path: &str, min: u64, max: u64, default: u64) -> u64 {
        self.number(path, min, max).unwrap_or(default)
    }

    /// A value parsed from its string form (addresses, networks).
    pub fn parsed<T: FromStr>(&mut self, path: &str, what: &str) -> Option<T> {
        let text = self.optional_str(path)?;
        match text.trim().parse() {
            Ok(value) => Some(value),
            Err(_) => {
                self.problem(format!("{path}: {text:?} is not {what}"));
                None
            }
        }
    }

    /// A list of parsed strings.
    pub fn parsed_list<T: FromStr>(&mut self, path: &str, what: &str) -> Vec<T> {
        let Some(value) = self.get(path) else {
            return Vec::new();
        };
        let Some(items) = value.as_array() else {
            self.problem(format!("{path}: must be a list"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.as_str().map(|s| s.trim().parse()) {
                Some(Ok(v)) => out.push(v),
                _ => self.problem(format!("{path}[{i}]: {item} is not {what}")),
            }
        }
        out
    }

    /// An enum written as its FMC name.
    pub fn choice<T: Copy>(&mut self, path: &str, choices: &[(&str, T)], default: T) -> T {
        let Some(text) = self.optional_str(path) else {
            return default;
        };
        match choices
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(&text))
        {
            Some((_, value)) => *value,
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                self.problem(format!(
                    "{path}: {text:?} is not one of {}",
                    names.join(", ")
                ));
                default
            }
        }
    }

    /// `{id}` of an object reference.
    pub fn reference(&mut self, path: &str) -> Option<Uuid> {
        let value = self.get(path)?;
        match value.get("id").and_then(Value::as_str).map(Uuid::parse_str) {
            Some(Ok(id)) => Some(id),
            _ => {
                self.problem(format!(
                    "{path}: must be an object reference {{\"id\": \"<uuid>\"}}"
                ));
                None
            }
        }
    }

    pub fn required_reference(&mut self, path: &str) -> Uuid {
        match self.get(path) {
            None => {
                self.problem(format!("{path}: is required"));
                Uuid::nil()
            }
            Some(_) => self.reference(path).unwrap_or_default(),
        }
    }

    /// `[{id}, ...]`.
    pub fn references(&mut self, path: &str) -> Vec<Uuid> {
        let Some(value) = self.get(path) else {
            return Vec::new();
        };
        let Some(items) = value.as_array() else {
            self.problem(format!("{path}: must be a list of object references"));
            return Vec::new();
        };
        let mut ids = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get("id").and_then(Value::as_str).map(Uuid::parse_str) {
                Some(Ok(id)) => ids.push(id),
                _ => self.problem(format!(
                    "{path}[{i}]: must be an object reference {{\"id\": \"<uuid>\"}}"
                )),
            }
        }
        ids
    }

    /// Every problem at once, or nothing.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.problems))
        }
    }
}
