//! The actors: one per deployment, one router, and the lease that ties a request to them.

pub mod deployment;
pub mod lease;
pub mod router;

pub use deployment::{DeploymentActor, Inspect, Report, Reserve};
pub use lease::Lease;
pub use router::{Pick, Publish, RouterActor};
