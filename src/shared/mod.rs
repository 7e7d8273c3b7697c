//! State shared between instances through Redis: key and deployment limits checked atomically,
//! cooldowns and key changes broadcast, with local state whenever Redis is unreachable.

pub mod redis;

pub use self::redis::{Redis, Unavailable};
