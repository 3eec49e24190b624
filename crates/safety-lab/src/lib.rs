//! Tools that fit and measure Onda's safety models. Nothing here ships in the server: the fitted weights
//! are committed next to the data that made them (`crates/safety/model/`), and the server loads those.

pub mod cache;
