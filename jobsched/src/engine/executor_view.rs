//! The engine's view of executors (from membership and storage) and the routing strategies.

use std::collections::BTreeMap;

use crate::model::{ExecutorId, ExecutorInfo, Job, RoutingStrategy};

/// What the engine knows about one executor.
#[derive(Clone, Debug)]
pub(crate) struct ExecState {
    pub info: ExecutorInfo,
    /// Registration epoch of the incarnation currently online.
    pub epoch: u64,
    pub online: bool,
    pub enabled: bool,
    /// Tasks given to it that have not ended.
    pub inflight: u32,
}

/// Executors that joined or left in a membership change.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct MembershipDiff {
    /// New incarnations (a restarted executor appears here with its new epoch).
    pub joined: Vec<(ExecutorInfo, u64)>,
    /// Incarnations that are gone: `(id, epoch)`.
    pub left: Vec<(ExecutorId, u64)>,
}

#[derive(Debug, Default)]
pub(crate) struct ExecutorView {
    execs: BTreeMap<ExecutorId, ExecState>,
    rr: usize,
    prefetch: u32,
}

/// 64-bit FNV-1a: stable across processes and releases, which rendezvous hashing needs.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl ExecutorView {
    pub fn set_prefetch(&mut self, prefetch: u32) {
        self.prefetch = prefetch;
    }

    pub fn get(&self, id: &ExecutorId) -> Option<&ExecState> {
        self.execs.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ExecState> {
        self.execs.values()
    }

    fn has_room(&self, e: &ExecState) -> bool {
        e.online && e.enabled && e.inflight < e.info.capacity.saturating_add(self.prefetch)
    }

    /// Has a slot free now (not only room in its prefetch queue).
    fn has_slot(e: &ExecState) -> bool {
        e.inflight < e.info.capacity
    }

    /// True if some executor could take a task now.
    pub fn any_free(&self) -> bool {
        self.execs.values().any(|e| self.has_room(e))
    }

    fn eligible(&self, e: &ExecState, job: Option<&Job>, task_type: &str) -> bool {
        self.has_room(e)
            && e.info.handlers.iter().any(|h| h == task_type)
            && job.is_none_or(|j| {
                (j.executor_group.is_empty() || j.executor_group == e.info.group)
                    && j.executor_labels
                        .iter()
                        .all(|(k, v)| e.info.labels.get(k) == Some(v))
            })
    }

    /// Picks an executor for a task of `job` (its routing strategy and selector) and handler `task_type`,
    /// and reserves a slot on it. `None` if no executor is eligible and has room.
    pub fn pick(&mut self, job: Option<&Job>, task_type: &str) -> Option<(ExecutorId, u64)> {
        let strategy = job.map(|j| j.routing_strategy).unwrap_or_default();
        let this = &*self;
        // Executors with a free slot first; only when none has one, those with prefetch room (a task
        // waiting in a busy executor's queue while another sits idle would be a needless delay). The
        // sticky strategies keep their order: their choice is the point.
        let slot_first = !matches!(
            strategy,
            RoutingStrategy::ConsistentHash | RoutingStrategy::Failover
        );
        let slot_free = slot_first
            && self.prefetch > 0
            && self
                .execs
                .values()
                .any(|e| Self::has_slot(e) && self.eligible(e, job, task_type));
        let candidates = || {
            this.execs.values().filter(move |e| {
                this.eligible(e, job, task_type) && (!slot_free || Self::has_slot(e))
            })
        };
        let chosen = match strategy {
            RoutingStrategy::RoundRobin => {
                let n = candidates().count();
                if n == 0 {
                    None
                } else {
                    let i = self.rr % n;
                    candidates().nth(i)
                }
            }
            RoutingStrategy::Random => {
                let n = candidates().count();
                if n == 0 {
                    None
                } else {
                    candidates().nth(fastrand::usize(..n))
                }
            }
            RoutingStrategy::LeastLoaded => candidates().min_by(|a, b| {
                let la = u64::from(a.inflight) * u64::from(b.info.capacity.max(1));
                let lb = u64::from(b.inflight) * u64::from(a.info.capacity.max(1));
                la.cmp(&lb)
            }),
            RoutingStrategy::ConsistentHash => {
                let key = job.map(|j| j.job_id.as_str()).unwrap_or(task_type);
                candidates().max_by_key(|e| {
                    fnv1a(&[key.as_bytes(), e.info.executor_id.as_str().as_bytes()])
                })
            }
            RoutingStrategy::Failover => candidates().next(),
        }
        .map(|e| (e.info.executor_id.clone(), e.epoch));
        if strategy == RoutingStrategy::RoundRobin && chosen.is_some() {
            self.rr = self.rr.wrapping_add(1);
        }
        if let Some((id, _)) = &chosen {
            self.execs
                .get_mut(id)
                .expect("chosen from the map")
                .inflight += 1;
        }
        chosen
    }

    /// Counts a task on an executor (for tasks found dispatched at takeover). False if that incarnation
    /// is not online.
    pub fn reserve(&mut self, id: &ExecutorId, epoch: u64) -> bool {
        match self.execs.get_mut(id) {
            Some(e) if e.online && e.epoch == epoch => {
                e.inflight += 1;
                true
            }
            _ => false,
        }
    }

    /// Frees a slot taken by a task of incarnation `epoch`.
    pub fn release(&mut self, id: &ExecutorId, epoch: u64) {
        if let Some(e) = self.execs.get_mut(id) {
            if e.epoch == epoch {
                e.inflight = e.inflight.saturating_sub(1);
            }
        }
    }

    /// Sets whether an operator enabled the executor. Adds an offline entry for unknown ids.
    pub fn set_enabled(&mut self, info: &ExecutorInfo, enabled: bool) {
        self.execs
            .entry(info.executor_id.clone())
            .or_insert_with(|| ExecState {
                info: info.clone(),
                epoch: 0,
                online: false,
                enabled,
                inflight: 0,
            })
            .enabled = enabled;
    }

    /// Replaces the online set with `members` and reports who joined and who left.
    pub fn set_members(&mut self, members: Vec<(ExecutorInfo, u64)>) -> MembershipDiff {
        let mut diff = MembershipDiff::default();
        let mut online: BTreeMap<ExecutorId, (ExecutorInfo, u64)> = members
            .into_iter()
            .map(|(i, e)| (i.executor_id.clone(), (i, e)))
            .collect();
        for (id, state) in self.execs.iter_mut() {
            match online.remove(id) {
                Some((info, epoch)) => {
                    if !state.online || state.epoch != epoch {
                        if state.online {
                            diff.left.push((id.clone(), state.epoch));
                        }
                        diff.joined.push((info.clone(), epoch));
                        state.inflight = 0;
                    }
                    state.info = info;
                    state.epoch = epoch;
                    state.online = true;
                }
                None if state.online => {
                    diff.left.push((id.clone(), state.epoch));
                    state.online = false;
                    state.inflight = 0;
                }
                None => {}
            }
        }
        for (id, (info, epoch)) in online {
            diff.joined.push((info.clone(), epoch));
            self.execs.insert(
                id,
                ExecState {
                    info,
                    epoch,
                    online: true,
                    enabled: true,
                    inflight: 0,
                },
            );
        }
        diff
    }

    /// Online executors.
    pub fn online_count(&self) -> usize {
        self.execs.values().filter(|e| e.online).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobSpec, model::RoutingStrategy};
    use std::collections::BTreeMap;

    fn info(id: &str, capacity: u32) -> ExecutorInfo {
        ExecutorInfo {
            executor_id: ExecutorId::new(id).unwrap(),
            host: "h".into(),
            port: 0,
            capacity,
            group: String::new(),
            labels: BTreeMap::new(),
            handlers: vec!["shell".into()],
            version: String::new(),
        }
    }

    fn view(caps: &[(&str, u32)]) -> ExecutorView {
        let mut v = ExecutorView::default();
        v.set_members(
            caps.iter()
                .enumerate()
                .map(|(i, (id, c))| (info(id, *c), i as u64 + 1))
                .collect(),
        );
        v
    }

    fn job(strategy: RoutingStrategy, id: &str) -> Job {
        JobSpec::manual(id, "true")
            .with_job_id(crate::JobId::new(id).unwrap())
            .with_routing(strategy)
            .build(chrono::Utc::now())
            .unwrap()
    }

    fn picks(v: &mut ExecutorView, j: &Job, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                v.pick(Some(j), "shell")
                    .map(|(e, _)| e.to_string())
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn round_robin_cycles_and_capacity_limits() {
        let mut v = view(&[("a", 2), ("b", 1)]);
        let j = job(RoutingStrategy::RoundRobin, "j");
        assert_eq!(picks(&mut v, &j, 4), vec!["a", "b", "a", ""]);
        assert!(!v.any_free());
        v.release(&ExecutorId::new("b").unwrap(), 2);
        assert_eq!(picks(&mut v, &j, 1), vec!["b"]);
    }

    #[test]
    fn free_slots_are_used_before_prefetch_room() {
        let mut v = view(&[("a", 2), ("b", 1)]);
        v.set_prefetch(2);
        let j = job(RoutingStrategy::RoundRobin, "j");
        let first = picks(&mut v, &j, 3);
        let count = |p: &[String], id: &str| p.iter().filter(|x| *x == id).count();
        assert_eq!(
            (count(&first, "a"), count(&first, "b")),
            (2, 1),
            "{first:?}"
        );
        let rest = picks(&mut v, &j, 5);
        assert_eq!((count(&rest, "a"), count(&rest, "b")), (2, 2), "{rest:?}");
        assert_eq!(rest[4], "", "capacity plus prefetch is the limit");
    }

    #[test]
    fn least_loaded_prefers_the_emptiest_share() {
        let mut v = view(&[("a", 4), ("b", 1)]);
        let j = job(RoutingStrategy::LeastLoaded, "j");
        // a: 0/4, b: 0/1 -> a (tie, first); a 1/4 vs b 0/1 -> b; then a 1/4, a 2/4, a 3/4.
        assert_eq!(picks(&mut v, &j, 5), vec!["a", "b", "a", "a", "a"]);
    }

    #[test]
    fn consistent_hash_is_sticky_and_moves_only_when_full() {
        let mut v = view(&[("a", 10), ("b", 10), ("c", 10)]);
        let jobs: Vec<Job> = (0..20)
            .map(|i| job(RoutingStrategy::ConsistentHash, &format!("j{i}")))
            .collect();
        let first: Vec<String> = jobs.iter().map(|j| picks(&mut v, j, 1).remove(0)).collect();
        let mut v2 = view(&[("a", 10), ("b", 10), ("c", 10)]);
        let again: Vec<String> = jobs
            .iter()
            .map(|j| picks(&mut v2, j, 1).remove(0))
            .collect();
        assert_eq!(first, again, "same job, same executor, across schedulers");
        assert!(
            first.iter().collect::<std::collections::HashSet<_>>().len() > 1,
            "spreads jobs"
        );
        let mut v3 = view(&[("a", 1), ("b", 1), ("c", 1)]);
        let j = &jobs[0];
        let p = picks(&mut v3, j, 3);
        assert_eq!(p[0], first[0]);
        assert_eq!(p.iter().collect::<std::collections::HashSet<_>>().len(), 3);
    }

    #[test]
    fn failover_takes_the_first_available() {
        let mut v = view(&[("a", 1), ("b", 5)]);
        let j = job(RoutingStrategy::Failover, "j");
        assert_eq!(picks(&mut v, &j, 3), vec!["a", "b", "b"]);
    }

    #[test]
    fn random_spreads_over_eligible_executors() {
        let mut v = view(&[("a", 1000), ("b", 1000)]);
        let j = job(RoutingStrategy::Random, "j");
        let p = picks(&mut v, &j, 200);
        assert!(p.iter().any(|e| e == "a") && p.iter().any(|e| e == "b"));
    }

    #[test]
    fn disabled_offline_and_non_matching_executors_get_nothing() {
        let mut v = view(&[("a", 5), ("b", 5)]);
        v.set_enabled(&info("a", 5), false);
        let mut j = job(RoutingStrategy::RoundRobin, "j");
        assert_eq!(picks(&mut v, &j, 2), vec!["b", "b"]);
        assert_eq!(
            v.pick(Some(&j), "python"),
            None,
            "no executor runs that type"
        );
        j.executor_group = "gpu".into();
        assert_eq!(v.pick(Some(&j), "shell"), None);
        let diff = v.set_members(vec![(info("a", 5), 1)]);
        assert_eq!(diff.left, vec![(ExecutorId::new("b").unwrap(), 2)]);
        j.executor_group.clear();
        assert_eq!(
            v.pick(Some(&j), "shell"),
            None,
            "a is disabled, b is offline"
        );
    }

    #[test]
    fn a_restart_is_a_leave_and_a_join() {
        let mut v = view(&[("a", 5)]);
        let diff = v.set_members(vec![(info("a", 5), 9)]);
        assert_eq!(diff.left, vec![(ExecutorId::new("a").unwrap(), 1)]);
        assert_eq!(diff.joined.len(), 1);
        assert_eq!(diff.joined[0].1, 9);
    }
}
