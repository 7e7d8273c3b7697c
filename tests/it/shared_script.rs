//! The limits script on the machine's Redis, driven through `Shared` itself: requests that
//! arrive together go to Redis in one call, where each is decided in turn against what the
//! call has counted so far, so a burst on one key is held exactly to its limits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::future::join_all;

use llmgate::config::{RedisTarget, Secret};
use llmgate::db::models::KeyRow;
use llmgate::keys::{Admission, KeyRecord, Rejection};
use llmgate::shared::{Checks, Redis, Shared, Verdict};

use crate::support::eventually;
use crate::support::redis_counts::{connect, requests_and_slots};

const SLOT_MS: u64 = 60_000;

fn shared() -> Shared {
    let namespace = format!(
        "llmgate-script-{}",
        llmgate::providers::random_uuid().simple()
    );
    let target = RedisTarget {
        url: Secret::new("redis://127.0.0.1:6379"),
        shown: "127.0.0.1:6379".into(),
        namespace,
    };
    Shared::new(Redis::new(&target, 4).unwrap(), Duration::from_secs(60))
}

/// Deletes what a test wrote under its namespace (windows and slot sets expire by themselves
/// within a minute; budget counters would stay a day).
async fn clean(shared: &Shared) {
    let mut conn = connect(6379).await;
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("{}:*", shared.ns()))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = ::redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

fn admission(edit: impl FnOnce(&mut KeyRow)) -> Admission {
    let mut row = KeyRow::blank("t".into(), "sk-...t".into(), Utc::now().naive_utc());
    edit(&mut row);
    Admission {
        spend: 0.0,
        requests: None,
        tokens: None,
        reset: None,
        record: Arc::new(KeyRecord::new(row, HashMap::new())),
        model_spend: 0.0,
        period: None,
        counted_here: false,
    }
}

fn key_checks(shared: &Shared, a: &Admission) -> Checks {
    let mut c = Checks::default();
    c.key(shared.ns(), "t", "g", a, SLOT_MS);
    c
}

/// `n` admissions started at once, so they queue together and go to Redis in few calls.
async fn burst(shared: &Shared, n: usize, checks: impl Fn() -> Checks) -> Vec<(String, Verdict)> {
    let asks = (0..n).map(|_| {
        let slot = shared.slot_id();
        let checks = checks();
        async move {
            let verdict = shared
                .admit(checks, slot.clone())
                .await
                .expect("redis is up");
            (slot, verdict)
        }
    });
    join_all(asks).await
}

fn admitted(verdicts: &[(String, Verdict)]) -> usize {
    verdicts
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Admitted { .. }))
        .count()
}

/// Settles every admitted request, each having used `tokens` and cost `cost`.
fn settle_all(shared: &Shared, verdicts: Vec<(String, Verdict)>, tokens: u64, cost: f64) {
    for (slot, verdict) in verdicts {
        if let Verdict::Admitted {
            key, deployment, ..
        } = verdict
        {
            shared.settle(key, &slot, tokens, cost);
            shared.settle(deployment, &slot, tokens, cost);
        }
    }
}

#[actix_rt::test]
async fn a_burst_on_one_key_gets_exactly_its_rpm_limit() {
    let shared = shared();
    let a = admission(|r| r.rpm_limit = Some(30));
    let first = burst(&shared, 80, || key_checks(&shared, &a)).await;
    assert_eq!(admitted(&first), 30);
    let refusal = first
        .iter()
        .find_map(|(_, v)| match v {
            Verdict::KeyRefused(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        matches!(&refusal, Rejection::RateLimited { what, .. } if what == "rpm_limit=30"),
        "{refusal:?}"
    );
    // The refused ones counted nothing: the window holds exactly 30.
    let again = burst(&shared, 5, || key_checks(&shared, &a)).await;
    assert_eq!(admitted(&again), 0);
    clean(&shared).await;
}

#[actix_rt::test]
async fn parallel_slots_held_in_one_call_are_exact_and_freed_by_settling() {
    let shared = shared();
    let a = admission(|r| r.max_parallel_requests = Some(5));
    let first = burst(&shared, 12, || key_checks(&shared, &a)).await;
    assert_eq!(admitted(&first), 5);
    let freed: Vec<_> = first
        .into_iter()
        .filter(|(_, v)| matches!(v, Verdict::Admitted { .. }))
        .take(2)
        .collect();
    settle_all(&shared, freed, 10, 0.0);
    let mut total = 0;
    let freed_both = eventually(Duration::from_secs(3), async || {
        let next = burst(&shared, 6, || key_checks(&shared, &a)).await;
        total += admitted(&next);
        total >= 2
    })
    .await;
    assert!(freed_both, "the two freed slots were not reused");
    assert_eq!(total, 2, "more slots than were freed");
    clean(&shared).await;
}

#[actix_rt::test]
async fn token_reservations_in_one_call_fit_the_tpm_and_settle_to_what_was_used() {
    let shared = shared();
    let id = "d1";
    let deployment = || {
        let mut c = Checks::default();
        c.deployment(shared.ns(), id, None, Some(1000), 300);
        c
    };
    let first = burst(&shared, 5, deployment).await;
    assert_eq!(
        admitted(&first),
        3,
        "3 x 300 fit in 1000, a fourth does not"
    );
    assert!(first
        .iter()
        .any(|(_, v)| matches!(v, Verdict::DeploymentFull { .. })));
    // All three used 100 tokens: 300 counted, so two more reservations of 300 fit.
    settle_all(&shared, first, 100, 0.0);
    let mut total = 0;
    assert!(
        eventually(Duration::from_secs(3), async || {
            total += admitted(&burst(&shared, 1, deployment).await);
            total >= 2
        })
        .await
    );
    assert_eq!(admitted(&burst(&shared, 3, deployment).await), 0);
    clean(&shared).await;
}

#[actix_rt::test]
async fn spend_settled_together_adds_up_against_the_budget() {
    let shared = shared();
    let mut a = admission(|r| r.max_budget = Some(1.0));
    a.spend = 0.25;
    let first = burst(&shared, 3, || key_checks(&shared, &a)).await;
    assert_eq!(admitted(&first), 3, "the budget is not spent yet");
    // Three requests of 0.25 each, settled in one call: 0.25 + 0.75 = 1.0, the budget.
    settle_all(&shared, first, 10, 0.25);
    let refused = eventually(Duration::from_secs(3), async || {
        let next = burst(&shared, 1, || key_checks(&shared, &a)).await;
        matches!(
            &next[0].1,
            Verdict::KeyRefused(Rejection::BudgetExceeded { spend, .. }) if (spend - 1.0).abs() < 1e-9
        )
    })
    .await;
    assert!(refused, "the budget counter did not reach 1.0");
    clean(&shared).await;
}

#[actix_rt::test]
async fn a_lease_admits_requests_here_and_gives_back_what_it_did_not_use() {
    let shared = shared();
    let a = admission(|r| {
        r.rpm_limit = Some(100_000);
        r.max_parallel_requests = Some(10_000);
    });
    let headroom = &a.record.headroom;
    headroom.set(true);
    let most = Checks::lease_size(&a, "g");
    assert_eq!(most, 64);
    // Requests taken one by one for a while, as a slow key would: leases are started when
    // the current one runs low, and copies left at the end of their second are given back.
    let (mut credits, mut leases) = (Vec::new(), 0);
    let until = std::time::Instant::now() + Duration::from_millis(1500);
    while std::time::Instant::now() < until {
        let (credit, lease) = headroom.take(&shared, most);
        if let Some(copies) = lease {
            leases += 1;
            headroom.lease(&shared, key_checks(&shared, &a), copies);
        }
        credits.extend(credit);
        actix_rt::time::sleep(Duration::from_millis(3)).await;
    }
    assert!(
        credits.len() > 3 * leases,
        "{} requests on {leases} leases",
        credits.len()
    );
    let slots: std::collections::HashSet<_> = credits.iter().map(|c| c.slot.clone()).collect();
    assert_eq!(
        slots.len(),
        credits.len(),
        "each request holds a slot of its own"
    );
    // Once the sweeper has given back the unused copies, Redis counts exactly the requests
    // used: in the minute's window and in the slots held.
    let mut conn = connect(6379).await;
    let counts = async |conn: &mut _| requests_and_slots(conn, shared.ns(), "t").await;
    let used = credits.len() as u64;
    let mut seen = (0, 0);
    let exact = eventually(Duration::from_secs(4), async || {
        seen = counts(&mut conn).await;
        seen == (used, used)
    })
    .await;
    assert!(exact, "redis counts {seen:?} for {used} requests used");
    // Ending the requests frees their slots.
    for c in credits {
        shared.settle(c.ticket, &c.slot, 10, 0.0);
    }
    let freed = eventually(Duration::from_secs(3), async || {
        counts(&mut conn).await.1 == 0
    })
    .await;
    assert!(freed, "slots still held after every request ended");
    clean(&shared).await;
}
