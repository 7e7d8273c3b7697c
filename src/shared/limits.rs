//! Limits held across instances: the checks of one request (its key's and its deployment's),
//! sent to Redis as one atomic script call, and the settlement that ends the request.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::Cmd;

use crate::governance::{EntityRef, Held};
use crate::keys::{Admission, Rejection};

/// Why a check may refuse: what the refusal says. Only a refusal spells it out, so admitting
/// a request formats nothing.
#[derive(Debug, Clone, PartialEq)]
enum Label {
    /// A key's rate or parallel limit (`rpm_limit`) and its value, on a model group when the
    /// limit is per model: named as the 429 names it (`rpm_limit=30`).
    KeyRate(&'static str, i64, Option<Arc<str>>),
    /// A budget: what ran out (`key`, a model group, `proxy`, an entity) and its limit.
    Budget(Spent, f64),
    /// A user's, team's, member's, end user's or tag's rate or parallel limit and its value.
    EntityRate(EntityRef, &'static str, u64),
    /// The deployment's rpm or tpm.
    Deployment,
}

/// Whose budget a budget check holds.
#[derive(Debug, Clone, PartialEq)]
enum Spent {
    Key,
    Model(Arc<str>),
    Proxy,
    Entity(EntityRef),
}

impl Label {
    /// What the refusal names.
    fn what(&self) -> String {
        match self {
            Label::KeyRate(name, limit, None) => format!("{name}={limit}"),
            Label::KeyRate(name, limit, Some(group)) => format!("{name} for {group}={limit}"),
            Label::Budget(Spent::Key, _) => "key".into(),
            Label::Budget(Spent::Model(group), _) => format!("model {group}"),
            Label::Budget(Spent::Proxy, _) => "proxy".into(),
            Label::Budget(Spent::Entity(entity), _) => entity.to_string(),
            Label::EntityRate(_, name, limit) => format!("{name}={limit}"),
            Label::Deployment => "deployment".into(),
        }
    }
}

/// What ending the request must do for one check.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    FreeSlot,
    /// Tokens: `reserved` were counted at admission.
    Tokens {
        reserved: u64,
    },
    Spend,
}

/// One request's checks, in the script's argument layout.
#[derive(Debug, Clone, Default)]
pub struct Checks {
    keys: Vec<String>,
    args: Vec<String>,
    labels: Vec<Label>,
    steps: Vec<Option<Step>>,
    key_checks: usize,
    /// How many of the first checks are the key's own (its rate-limit headers come from them).
    own_checks: usize,
}

/// A request admitted by Redis, with what ending it must undo or add (owned by the request's
/// charge for the key's part and by its lease for the deployment's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ticket {
    /// Shared by the copies of a lease, so a request admitted on one copies nothing.
    steps: Arc<[(String, Step)]>,
    /// The second the request was admitted in (its tokens' bucket).
    second: u64,
}

/// A key's `(limit, remaining)` requests and tokens this minute, as Redis counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Remaining {
    /// Requests, when the key has an rpm limit.
    pub requests: Option<(u64, u64)>,
    /// Tokens, when the key has a tpm limit.
    pub tokens: Option<(u64, u64)>,
}

/// The script's verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Every check passed and counted the request.
    Admitted {
        /// What ending the key's part must do.
        key: Ticket,
        /// What ending the deployment's part must do.
        deployment: Ticket,
        /// The key's requests and tokens left this minute, for the headers.
        remaining: Remaining,
        /// Whether every key check has ample room left (see `Checks::ample`).
        ample: bool,
        /// How many copies were admitted: 1, or up to a lease's size.
        copies: u32,
    },
    /// The key may not make the request now.
    KeyRefused(Rejection),
    /// The deployment is at its rpm or tpm across instances until `retry_after` from now.
    DeploymentFull {
        /// When the oldest request leaves its window.
        retry_after: Duration,
    },
}

/// The fewest requests, slots or tokens left under a limit for it to have ample room.
const AMPLE: u64 = 64;

/// The most requests one lease takes.
pub const MAX_LEASE: u32 = 64;

/// A lease takes at most this share (1/n) of the tightest request or slot limit.
const LEASE_SHARE: u64 = 64;

/// How long a request's parallel slot is held at most: a request cannot outlive its timeout,
/// so an instance that died holding a slot frees it after this.
pub fn slot_lifetime(request_timeout: Duration) -> Duration {
    request_timeout + Duration::from_secs(5)
}

impl Checks {
    /// Whether there is anything to ask Redis.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn push(
        &mut self,
        key: String,
        kind: &str,
        limit: String,
        amount: String,
        label: Label,
        step: Option<Step>,
    ) {
        self.keys.push(key);
        self.args.push(kind.to_owned());
        self.args.push(limit);
        self.args.push(amount);
        self.labels.push(label);
        self.steps.push(step);
    }

    /// The key's limits (call before `proxy` and `deployment`): rpm, tpm and parallel requests (its own and on `group`), and its
    /// budgets (its own and on `group`), whose shared counters start from what this instance
    /// knows (`admission`'s spend). Keys are named under `ns` (`llmgate:key:<hash>:...`).
    pub fn key(&mut self, ns: &str, token: &str, group: &str, a: &Admission, slot_ms: u64) {
        let row = &a.record.row;
        let base = format!("{ns}:key:{token}");
        if let Some(max) = row.max_parallel_requests {
            let label = Label::KeyRate("max_parallel_requests", max, None);
            self.push(
                format!("{base}:par"),
                "P",
                max.to_string(),
                slot_ms.to_string(),
                label,
                Some(Step::FreeSlot),
            );
        }
        if let Some(rpm) = row.rpm_limit {
            let label = Label::KeyRate("rpm_limit", rpm, None);
            self.push(
                format!("{base}:rpm"),
                "R",
                rpm.to_string(),
                "1".into(),
                label,
                None,
            );
        }
        if let Some(tpm) = row.tpm_limit {
            let label = Label::KeyRate("tpm_limit", tpm, None);
            let step = Some(Step::Tokens { reserved: 0 });
            self.push(
                format!("{base}:tpm"),
                "T",
                tpm.to_string(),
                "0".into(),
                label,
                step,
            );
        }
        if let Some(&rpm) = a.record.model_rpm_limit.get(group) {
            let label = Label::KeyRate("model_rpm_limit", rpm as i64, Some(Arc::from(group)));
            self.push(
                format!("{base}:m:{group}:rpm"),
                "R",
                rpm.to_string(),
                "1".into(),
                label,
                None,
            );
        }
        if let Some(&tpm) = a.record.model_tpm_limit.get(group) {
            let label = Label::KeyRate("model_tpm_limit", tpm as i64, Some(Arc::from(group)));
            let step = Some(Step::Tokens { reserved: 0 });
            self.push(
                format!("{base}:m:{group}:tpm"),
                "T",
                tpm.to_string(),
                "0".into(),
                label,
                step,
            );
        }
        let period = period_name(a.period);
        if let Some(budget) = row.max_budget {
            let label = Label::Budget(Spent::Key, budget);
            let key = format!("{base}:spend:{period}");
            self.push(
                key,
                "B",
                budget.to_string(),
                a.spend.to_string(),
                label,
                Some(Step::Spend),
            );
        }
        if let Some(&budget) = a.record.model_max_budget.get(group) {
            let label = Label::Budget(Spent::Model(Arc::from(group)), budget);
            let key = format!("{base}:m:{group}:spend:{period}");
            self.push(
                key,
                "B",
                budget.to_string(),
                a.model_spend.to_string(),
                label,
                Some(Step::Spend),
            );
        }
        self.key_checks = self.keys.len();
        self.own_checks = self.keys.len();
    }

    /// A user's, team's, member's, end user's or tag's limits, as held by `held` (call after
    /// `key` and before `proxy` and `deployment`): its rpm, tpm and parallel requests, and its
    /// budget, whose shared counter starts from what this instance knows.
    pub fn entity(&mut self, ns: &str, held: &Held, slot_ms: u64) {
        let e = &held.entity;
        let base = format!("{ns}:{}", entity_name(e));
        if let Some(limits) = held.record.as_ref().map(|r| &r.limits) {
            if let Some(max) = limits.max_parallel_requests {
                let label = Label::EntityRate(e.clone(), "max_parallel_requests", max);
                let (limit, amount) = (max.to_string(), slot_ms.to_string());
                self.push(
                    format!("{base}:par"),
                    "P",
                    limit,
                    amount,
                    label,
                    Some(Step::FreeSlot),
                );
            }
            if let Some(rpm) = limits.rpm_limit {
                let label = Label::EntityRate(e.clone(), "rpm_limit", rpm);
                self.push(
                    format!("{base}:rpm"),
                    "R",
                    rpm.to_string(),
                    "1".into(),
                    label,
                    None,
                );
            }
            if let Some(tpm) = limits.tpm_limit {
                let label = Label::EntityRate(e.clone(), "tpm_limit", tpm);
                let step = Some(Step::Tokens { reserved: 0 });
                self.push(
                    format!("{base}:tpm"),
                    "T",
                    tpm.to_string(),
                    "0".into(),
                    label,
                    step,
                );
            }
        }
        if let Some(budget) = held.budget {
            let label = Label::Budget(Spent::Entity(e.clone()), budget);
            let key = format!("{base}:spend:{}", period_name(held.period));
            let (limit, start) = (budget.to_string(), held.spend.to_string());
            self.push(key, "B", limit, start, label, Some(Step::Spend));
        }
        self.key_checks = self.keys.len();
    }

    /// How many requests a lease on `a`'s key may take at once, for a request to `group` (see
    /// `shared::lease`): none unless the key has only rate and parallel limits there (a budget
    /// is checked request by request), and a small share of the tightest request or slot limit.
    pub fn lease_size(a: &Admission, group: &str) -> u32 {
        let (row, record) = (&a.record.row, &a.record);
        if row.max_budget.is_some()
            || record.model_max_budget.contains_key(group)
            || record.model_rpm_limit.contains_key(group)
            || record.model_tpm_limit.contains_key(group)
        {
            return 0;
        }
        let tightest = [row.rpm_limit, row.max_parallel_requests]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(i64::MAX)
            .max(0) as u64;
        (tightest / LEASE_SHARE).min(u64::from(MAX_LEASE)) as u32
    }

    /// The proxy-wide budget `budget` of the period ending at `period`, whose shared counter
    /// starts from `spend` (what this instance knows).
    pub fn proxy(&mut self, ns: &str, budget: f64, spend: f64, period: Option<DateTime<Utc>>) {
        let label = Label::Budget(Spent::Proxy, budget);
        let key = format!("{ns}:proxy:spend:{}", period_name(period));
        self.push(
            key,
            "B",
            budget.to_string(),
            spend.to_string(),
            label,
            Some(Step::Spend),
        );
        self.key_checks = self.keys.len();
    }

    /// The deployment's rpm and tpm (with `reserve` tokens), shared by every instance.
    pub fn deployment(
        &mut self,
        ns: &str,
        id: &str,
        rpm: Option<u64>,
        tpm: Option<u64>,
        reserve: u64,
    ) {
        let base = format!("{ns}:dep:{id}");
        if let Some(rpm) = rpm {
            self.push(
                format!("{base}:rpm"),
                "R",
                rpm.to_string(),
                "1".into(),
                Label::Deployment,
                None,
            );
        }
        if let Some(tpm) = tpm {
            let step = Some(Step::Tokens { reserved: reserve });
            self.push(
                format!("{base}:tpm"),
                "T",
                tpm.to_string(),
                reserve.to_string(),
                Label::Deployment,
                step,
            );
        }
    }

    /// The script's `KEYS`.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// The script's `ARGV` after `now` and the slot id.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Whether an admitted request left every key check (its rates and parallel slots) far
    /// from its limit: a tenth of it and at least `AMPLE` requests, slots or tokens, with no
    /// budget among them. Far from its limits, a key's next request is sent upstream while its
    /// admission is on its way (see `shared_limits::begin`).
    fn ample(&self, reply: &[String], copies: u32) -> bool {
        (0..self.key_checks).all(|i| {
            let (kind, limit) = (self.args[3 * i].as_str(), &self.args[3 * i + 1]);
            let used = reply.get(2 + i);
            match kind {
                "R" | "T" | "P" => {
                    let (Ok(limit), Some(Ok(used))) =
                        (limit.parse::<u64>(), used.map(|u| u.parse::<u64>()))
                    else {
                        return false;
                    };
                    limit.saturating_sub(used + u64::from(copies)) >= (limit / 10).max(AMPLE)
                }
                // A request refused after it went upstream may still be billed by the
                // provider: a key with a budget always waits for its verdict.
                _ => false,
            }
        })
    }

    /// Whether the checks include the deployment's (which may send the request elsewhere).
    pub fn has_deployment(&self) -> bool {
        self.keys.len() > self.key_checks
    }

    /// What giving back an unused copy of a lease on these checks undoes: its request in each
    /// rate window (a count of 1 reserved, none used) and its parallel slot.
    pub fn giveback(&self) -> Ticket {
        let steps = (0..self.key_checks)
            .filter_map(|i| match self.args[3 * i].as_str() {
                "R" => Some((self.keys[i].clone(), Step::Tokens { reserved: 1 })),
                "P" => Some((self.keys[i].clone(), Step::FreeSlot)),
                _ => None,
            })
            .collect();
        Ticket { steps, second: 0 }
    }

    /// Reads the script's reply: `[0, second, used...]` or `[check, retry_after_ms, used]`.
    pub fn verdict(&self, reply: &[String]) -> Option<Verdict> {
        let first: usize = reply.first()?.parse().ok()?;
        let second: u64 = reply.get(1)?.parse().ok()?;
        if first == 0 {
            let ticket = |range: std::ops::Range<usize>| Ticket {
                steps: range
                    .filter_map(|i| Some((self.keys[i].clone(), self.steps[i].clone()?)))
                    .collect(),
                second,
            };
            let key = ticket(0..self.key_checks);
            let deployment = ticket(self.key_checks..self.keys.len());
            let copies = reply
                .get(2 + self.keys.len())
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let used = |suffix: &str| {
                (0..self.own_checks)
                    .find(|&i| self.keys[i].ends_with(suffix) && !self.keys[i].contains(":m:"))
                    .and_then(|i| {
                        let limit: u64 = self.args[3 * i + 1].parse().ok()?;
                        let used: u64 = reply.get(2 + i)?.parse().ok()?;
                        Some((limit, used))
                    })
            };
            let remaining = Remaining {
                requests: used(":rpm").map(|(l, u)| (l, l.saturating_sub(u + 1))),
                tokens: used(":tpm").map(|(l, u)| (l, l.saturating_sub(u))),
            };
            return Some(Verdict::Admitted {
                key,
                deployment,
                remaining,
                ample: self.ample(reply, copies),
                copies,
            });
        }
        let retry_after = Duration::from_millis(second);
        let used = reply
            .get(2)
            .and_then(|u| u.parse::<f64>().ok())
            .unwrap_or(0.0);
        Some(match self.labels.get(first - 1)? {
            label @ Label::KeyRate(..) => Verdict::KeyRefused(Rejection::RateLimited {
                what: label.what(),
                retry_after: retry_after.max(Duration::from_secs(1)),
            }),
            label @ Label::Budget(_, budget) => Verdict::KeyRefused(Rejection::BudgetExceeded {
                what: label.what(),
                spend: used,
                budget: *budget,
            }),
            label @ Label::EntityRate(entity, ..) => {
                Verdict::KeyRefused(Rejection::EntityRateLimited {
                    entity: entity.clone(),
                    what: label.what(),
                    retry_after: retry_after.max(Duration::from_secs(1)),
                })
            }
            Label::Deployment => Verdict::DeploymentFull { retry_after },
        })
    }
}

impl Ticket {
    /// The second its request was admitted in.
    pub fn second(&self) -> u64 {
        self.second
    }

    /// The same steps, for a request admitted in `second`.
    pub fn in_second(self, second: u64) -> Ticket {
        Ticket { second, ..self }
    }

    /// Whether ending the request has anything to do in Redis.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The settle steps' keys (the script's `KEYS`, in order).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|(key, _)| key.as_str())
    }

    /// How many settle steps ending the request takes.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Appends the settle steps' values (four per key, in `keys` order) for a request holding
    /// `slot` that used `tokens` and cost `cost`.
    pub fn write_values(&self, slot: &str, tokens: u64, cost: f64, cmd: &mut Cmd) {
        for (_, step) in self.steps.iter() {
            match step {
                Step::FreeSlot => cmd.arg("P").arg(slot).arg(0).arg(0),
                Step::Tokens { reserved } => {
                    let change = tokens as i64 - *reserved as i64;
                    cmd.arg("T").arg(change).arg(self.second).arg(tokens)
                }
                Step::Spend => cmd.arg("S").arg(cost).arg(0).arg(0),
            };
        }
    }
}

/// How an entity's counters are named (after the namespace): its kind, then its scope's
/// length, scope and id, so the name is unambiguous whatever the ids hold.
pub fn entity_name(e: &EntityRef) -> String {
    format!("{}:{}:{}:{}", e.kind.as_str(), e.scope.len(), e.scope, e.id)
}

/// The name of a budget period's counter: when it ends, or `all` for spend that never resets.
pub fn period_name(period: Option<DateTime<Utc>>) -> String {
    period.map_or_else(|| "all".to_owned(), |p| p.timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::KeyRow;
    use crate::keys::KeyRecord;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn admission(row: KeyRow) -> Admission {
        Admission {
            spend: 0.5,
            requests: None,
            tokens: None,
            reset: None,
            record: Arc::new(KeyRecord::new(row, HashMap::new())),
            model_spend: 0.0,
            period: None,
            counted_here: false,
        }
    }

    fn row() -> KeyRow {
        let mut r = KeyRow::blank("t".into(), "sk-...abcd".into(), Utc::now().naive_utc());
        r.rpm_limit = Some(30);
        r.max_parallel_requests = Some(2);
        r.max_budget = Some(1.0);
        r
    }

    #[test]
    fn a_key_and_a_deployment_make_one_call() {
        let mut c = Checks::default();
        c.key("ns", "t", "g", &admission(row()), 605_000);
        c.deployment("ns", "d1", Some(20), Some(1000), 50);
        assert_eq!(
            c.keys(),
            [
                "ns:key:t:par",
                "ns:key:t:rpm",
                "ns:key:t:spend:all",
                "ns:dep:d1:rpm",
                "ns:dep:d1:tpm"
            ]
        );
        assert_eq!(&c.args()[..6], ["P", "2", "605000", "R", "30", "1"]);
        assert_eq!(&c.args()[6..9], ["B", "1", "0.5"]);
        let reply: Vec<String> = ["0", "1700000000", "0", "4", "0.5", "0", "0", "1"]
            .map(String::from)
            .into();
        let Some(Verdict::Admitted {
            key,
            deployment,
            remaining,
            ample,
            copies: 1,
        }) = c.verdict(&reply)
        else {
            panic!("admitted")
        };
        assert_eq!(
            remaining,
            Remaining {
                requests: Some((30, 25)),
                tokens: None
            }
        );
        assert!(!ample, "25 requests left of 30 is not ample room");
        assert_eq!(
            settled(&key, "i:7", 10, 0.25),
            [
                "ns:key:t:par",
                "ns:key:t:spend:all",
                "P",
                "i:7",
                "0",
                "0",
                "S",
                "0.25",
                "0",
                "0"
            ]
        );
        assert_eq!(
            settled(&deployment, "", 30, 0.0),
            ["ns:dep:d1:tpm", "T", "-20", "1700000000", "30"]
        );
    }

    /// A ticket's settle keys, then its values, as the script gets them.
    fn settled(ticket: &Ticket, slot: &str, tokens: u64, cost: f64) -> Vec<String> {
        let mut cmd = Cmd::new();
        for key in ticket.keys() {
            cmd.arg(key);
        }
        ticket.write_values(slot, tokens, cost, &mut cmd);
        cmd.args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn room_is_ample_far_from_every_rate_limit_and_never_with_a_budget() {
        let mut r = row();
        r.max_budget = None;
        r.rpm_limit = Some(1000);
        r.max_parallel_requests = Some(500);
        let mut c = Checks::default();
        c.key("ns", "t", "g", &admission(r.clone()), 1000);
        let admitted = |c: &Checks, used: [&str; 2]| match c
            .verdict(&["0", "1", used[0], used[1]].map(String::from))
        {
            Some(Verdict::Admitted { ample, .. }) => ample,
            other => panic!("{other:?}"),
        };
        assert!(
            admitted(&c, ["10", "500"]),
            "490 slots and 499 requests left"
        );
        assert!(!admitted(&c, ["440", "10"]), "59 slots left: fewer than 64");
        assert!(
            !admitted(&c, ["10", "950"]),
            "49 requests left: under a tenth"
        );
        r.max_budget = Some(100.0);
        let mut c = Checks::default();
        c.key("ns", "t", "g", &admission(r), 1000);
        let reply = ["0", "1", "0", "0", "0.5"].map(String::from);
        assert!(matches!(
            c.verdict(&reply),
            Some(Verdict::Admitted { ample: false, .. })
        ));
    }

    #[test]
    fn a_lease_counts_its_copies_and_gives_back_requests_and_slots() {
        let mut r = row();
        r.max_budget = None;
        r.rpm_limit = Some(100_000);
        r.max_parallel_requests = Some(2_000);
        r.tpm_limit = Some(1_000_000);
        let a = admission(r.clone());
        assert_eq!(Checks::lease_size(&a, "g"), 31, "a 64th of 2000 slots");
        let mut c = Checks::default();
        c.key("ns", "t", "g", &a, 1000);
        // A tenth of 2000 slots must be left after all the copies: 1790 used and 32 copies
        // leave 178, too few, where one request alone would leave 209.
        let lease = |used: &str, copies: &str| match c
            .verdict(&["0", "7", used, "10", "0", copies].map(String::from))
        {
            Some(Verdict::Admitted { copies, ample, .. }) => (copies, ample),
            other => panic!("{other:?}"),
        };
        assert_eq!(lease("1000", "32"), (32, true));
        assert_eq!(lease("1790", "32"), (32, false));
        assert_eq!(lease("1790", "1"), (1, true));
        assert_eq!(
            settled(&c.giveback().in_second(7), "i:3:5", 0, 0.0),
            [
                "ns:key:t:par",
                "ns:key:t:rpm",
                "P",
                "i:3:5",
                "0",
                "0",
                "T",
                "-1",
                "7",
                "0"
            ],
            "a copy given back frees its slot and takes its request out of second 7's bucket"
        );
        r.max_budget = Some(5.0);
        assert_eq!(
            Checks::lease_size(&admission(r.clone()), "g"),
            0,
            "a budget"
        );
        r.max_budget = None;
        r.rpm_limit = Some(100);
        assert_eq!(
            Checks::lease_size(&admission(r), "g"),
            1,
            "too tight to lease"
        );
    }

    #[test]
    fn refusals_name_what_refused() {
        let mut c = Checks::default();
        c.key("ns", "t", "g", &admission(row()), 1000);
        c.deployment("ns", "d1", Some(20), None, 0);
        let refuse = |i: &str, ms: &str, used: &str| c.verdict(&[i.into(), ms.into(), used.into()]);
        assert_eq!(
            refuse("2", "12500", "30"),
            Some(Verdict::KeyRefused(Rejection::RateLimited {
                what: "rpm_limit=30".into(),
                retry_after: Duration::from_millis(12_500)
            }))
        );
        assert_eq!(
            refuse("3", "0", "1.25"),
            Some(Verdict::KeyRefused(Rejection::BudgetExceeded {
                what: "key".into(),
                spend: 1.25,
                budget: 1.0
            }))
        );
        assert_eq!(
            refuse("4", "3000", "20"),
            Some(Verdict::DeploymentFull {
                retry_after: Duration::from_secs(3)
            })
        );
    }
}
