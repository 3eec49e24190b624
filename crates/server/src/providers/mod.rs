//! The outside world behind small traits. Each has a real production integration and an embedded
//! default that needs no keys and no network.

pub mod chat;
pub mod email;
