//! The actors: one per deployment, one router, and the lease that ties a request to them.

pub mod charge;
pub mod deployment;
pub mod lease;
pub mod ledger;
pub mod pick_timer;
pub mod router;
pub mod spend;

pub use charge::{Charge, ChargeFor, Durable, SharedLimits};
pub use deployment::{CoolDown, DeploymentActor, Inspect, Reconfigure, Report, Reserve};
pub use lease::Lease;
pub use router::{
    AdmitCached, ApplyTopology, CacheEntities, CacheKey, CachedEntity, CachedKey, ForgetEntity,
    ForgetKey, Governed, Pick, PickError, PickFor, PickStats, Picked, ProxyBudget, Publish,
    RouterActor, Settle,
};
pub use spend::{Flush, RecordSpend, SpendActor};
