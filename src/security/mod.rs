//! Security at the edge: the master key's strength, the client address filter, CORS.

pub mod cors;
pub mod ip;
pub mod master_key;
