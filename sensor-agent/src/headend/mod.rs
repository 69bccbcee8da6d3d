//! The AnyConnect-compatible headend: the TLS listener that requests (but does not
//! require) the machine certificate, and, next, the aggregate-auth HTTP routes and the
//! CSTP tunnel loop.

pub mod tls;
