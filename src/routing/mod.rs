//! Pure routing decisions: sliding rate windows, limits, cooldowns and strategies, with the
//! clock passed in.

pub mod cooldown;
pub mod deployment_state;
pub mod fallback;
pub mod limits;
pub mod rate_window;
pub mod retry;
pub mod strategy;

pub use cooldown::{Cooldown, CooldownPolicy, Failure, FailureClass};
pub use deployment_state::{
    DeploymentSnapshot, DeploymentState, Enforce, LatencyWindow, Outcome, Refused, Reservation,
};
pub use fallback::{FallbackCause, FallbackPolicy, RequestFallbacks};
pub use limits::{Blocked, Limit, Need, Profile};
pub use rate_window::RateWindow;
pub use retry::{ErrorClass, RetryPolicy};
pub use strategy::{choose, Candidate, NoCapacity, Pool, RoutingStrategy, Rules};
