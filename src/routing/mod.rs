//! Pure routing decisions: sliding rate windows, cooldowns and strategies, with the clock passed in.

pub mod cooldown;
pub mod deployment_state;
pub mod fallback;
pub mod rate_window;
pub mod retry;
pub mod strategy;

pub use cooldown::{Cooldown, CooldownPolicy, FailureClass};
pub use deployment_state::{DeploymentSnapshot, DeploymentState, Outcome, Refused};
pub use fallback::{FallbackCause, FallbackPolicy, RequestFallbacks};
pub use rate_window::RateWindow;
pub use retry::{ErrorClass, RetryPolicy};
pub use strategy::{choose, pick_simple_shuffle, Candidate, NoCapacity};
