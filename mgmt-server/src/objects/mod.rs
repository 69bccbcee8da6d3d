//! Objects (FMC's Objects > Object Management): the rules of their fields, checked once
//! here for both doors (REST API and web UI) before anything is stored.

pub mod group_policies;
