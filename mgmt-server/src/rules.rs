//! What a domain service answers when a change breaks its rules: every broken rule with
//! the field it is about, so that each door shows it where it belongs (the FMC JSON path
//! in a REST error body, the form field in the UI). A rule is written once, in its
//! service; the doors only map fields.

use std::fmt;

use vpn_core::config::{ObjectKind, object_name_problem};

use crate::db::DbError;

/// A field of an aggregate that a rule can be about.
pub trait Field: Copy + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// The field's path in FMC's JSON, e.g. `ipAddressRange`.
    fn fmc_path(self) -> &'static str;
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem<F> {
    pub field: F,
    /// A sentence about the value, without the field's name.
    pub message: String,
}

/// Why a change was not made: broken rules (nothing was written) or the database.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError<F: Field> {
    #[error("{}", describe(.0))]
    Invalid(Vec<Problem<F>>),
    #[error(transparent)]
    Db(#[from] DbError),
}

fn describe<F: Field>(problems: &[Problem<F>]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field.fmc_path(), p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Collects broken rules while an input is checked.
#[derive(Debug)]
pub struct Problems<F>(Vec<Problem<F>>);

impl<F: Field> Default for Problems<F> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<F: Field> Problems<F> {
    pub fn add(&mut self, field: F, message: impl Into<String>) {
        self.0.push(Problem {
            field,
            message: message.into(),
        });
    }

    pub fn has(&self, field: F) -> bool {
        self.0.iter().any(|p| p.field == field)
    }

    /// The name rule of objects that reach the sensor (one token on the FTD CLI, at most
    /// 64 characters: vpn-core's rule, the one the deployed document is checked with).
    pub fn check_object_name(&mut self, field: F, kind: ObjectKind, name: &str) {
        if let Some(problem) = object_name_problem(kind, name) {
            self.add(field, problem.to_string());
        }
    }

    /// The name rule of objects that stay on the manager (policies, devices): 1 to 128
    /// characters, no whitespace or control characters.
    pub fn check_manager_name(&mut self, field: F, name: &str) {
        if name.is_empty() {
            self.add(field, "is required");
        } else if name.chars().count() > MAX_MANAGER_NAME_CHARS
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            self.add(
                field,
                format!(
                    "{name:?}: names are 1 to {MAX_MANAGER_NAME_CHARS} characters without spaces"
                ),
            );
        }
    }

    pub fn into_vec(self) -> Vec<Problem<F>> {
        self.0
    }

    /// `Ok` when no rule is broken.
    pub fn finish(self) -> Result<(), ChangeError<F>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ChangeError::Invalid(self.0))
        }
    }
}

/// The longest name of an object that stays on the manager.
pub const MAX_MANAGER_NAME_CHARS: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Sample {
        Name,
    }

    impl Field for Sample {
        fn fmc_path(self) -> &'static str {
            "name"
        }
    }

    #[test]
    fn broken_rules_are_reported_with_their_fmc_paths_and_nothing_is_ok() {
        let mut problems = Problems::default();
        problems.check_object_name(Sample::Name, ObjectKind::Ipv4Pool, "two words");
        assert!(problems.has(Sample::Name));
        let error = problems.finish().err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "name: the IPv4 address pool name \"two words\" contains ' '; whitespace and control characters are not allowed"
            )
        );
        let mut fine = Problems::default();
        fine.check_object_name(Sample::Name, ObjectKind::Ipv4Pool, "POOL");
        fine.check_manager_name(Sample::Name, "RA-VPN-Policy");
        assert!(fine.finish().is_ok());
    }
}
