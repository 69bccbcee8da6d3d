//! Remote Access VPN (Devices > VPN > Remote Access): one service per aggregate, the only
//! place its rules live. Both doors (REST API and web UI) call these with typed inputs
//! and the acting administrator and map the answers; nothing is stored unless every
//! rule holds.

pub mod policies;
pub mod profiles;
