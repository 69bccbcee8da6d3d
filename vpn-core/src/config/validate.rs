//! `DeviceConfig::validate`: every problem, each with its JSON path.

/// One problem found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// JSON path of the offending value, e.g. `$.connection_profiles[0].aaa.hide_username`.
    pub path: String,
    pub kind: ProblemKind,
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {}
