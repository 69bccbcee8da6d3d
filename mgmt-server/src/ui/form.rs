//! Reading submitted forms and carrying validation errors back to their fields.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use super::UiError;
use crate::db::DbError;
use crate::rules::{ChangeError, Field, Problem};

/// Validation messages by field name; shown next to the field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Errors(BTreeMap<String, String>);

impl Errors {
    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    pub(crate) fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// The message for `field`, or an empty string.
    pub(crate) fn of(&self, field: &str) -> &str {
        self.0.get(field).map(String::as_str).unwrap_or("")
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every field with its message.
    pub(crate) fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(f, m)| (f.as_str(), m.as_str()))
    }

    /// A refused write becomes an error on the field it concerns (`name` for clashes),
    /// or on `form` for the rest.
    pub(crate) fn from_db(error: &DbError) -> Option<Self> {
        let mut errors = Self::default();
        match error {
            DbError::Conflict { field, value, .. } => {
                let field = if field.contains("name") {
                    "name"
                } else {
                    "form"
                };
                errors.add(
                    field,
                    format!("{value:?} is already used; choose another name."),
                );
            }
            DbError::Invalid { message, .. } => errors.add("form", message.clone()),
            DbError::MissingReference { .. }
            | DbError::WrongReference { .. }
            | DbError::Stale { .. }
            | DbError::InUse { .. }
            | DbError::WrongState { .. }
            | DbError::BuiltIn { .. } => errors.add("form", error.to_string()),
            _ => return None,
        }
        Some(errors)
    }
}

impl Errors {
    /// Broken rules of a service, each on the form field `field_of` names (the first
    /// message per field is kept).
    pub(crate) fn add_problems<F: Field>(
        &mut self,
        problems: &[Problem<F>],
        field_of: impl Fn(F) -> &'static str,
    ) {
        for problem in problems {
            self.add(field_of(problem.field), sentence(&problem.message));
        }
    }

    /// A change a service refused: broken rules on their fields, database refusals as
    /// [`Errors::from_db`]; anything else is the page's error.
    pub(crate) fn from_change<F: Field>(
        error: ChangeError<F>,
        field_of: impl Fn(F) -> &'static str,
    ) -> Result<Self, UiError> {
        match error {
            ChangeError::Invalid(problems) => {
                let mut errors = Self::default();
                errors.add_problems(&problems, field_of);
                Ok(errors)
            }
            ChangeError::Db(e) => Self::from_db(&e).ok_or(UiError::Db(e)),
        }
    }
}

/// A service's message as a sentence for the page: capital first letter, final stop.
pub(crate) fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut text = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

/// Parses an `application/x-www-form-urlencoded` body; repeated fields (checkboxes,
/// multi-selects) become vectors.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, UiError> {
    serde_html_form::from_bytes(body).map_err(|e| UiError::BadForm(e.to_string()))
}

/// A checkbox: present (any value) means on.
pub(crate) fn checked(value: &Option<String>) -> bool {
    value.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Sample {
        name: String,
        #[serde(default)]
        pick: Vec<String>,
    }

    #[test]
    fn repeated_fields_of_a_form_become_a_list() {
        let sample: Sample = parse(b"name=a%3Cb&pick=1&pick=2").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sample.name, "a<b");
        assert_eq!(sample.pick, ["1", "2"]);
    }

    #[test]
    fn a_name_clash_is_reported_on_the_name_field() {
        let errors = Errors::from_db(&DbError::Conflict {
            kind: crate::db::ObjectKind::GroupPolicy,
            field: "name".into(),
            value: "GP".into(),
        })
        .unwrap_or_default();
        assert!(errors.has("name"));
        assert!(errors.of("name").contains("GP"));
    }
}
