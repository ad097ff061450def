//! Health of member clusters: active checks with up/down thresholds, passive ejection with a
//! growing ejection time, slow start, and a compact encoding for proxy-wasm shared data.
//!
//! State is keyed by member name (not index), so it survives a config change that adds,
//! removes or reorders members. Every worker reads the same shared-data value, so they agree.

use std::collections::BTreeMap;

use crate::config::{ActiveHealth, PassiveHealth};

/// What one member cluster's health looks like to every worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberHealth {
    /// The active checks' verdict. Members start up, so a proxy serves before its first check.
    pub up: bool,
    pub ok_streak: u32,
    pub fail_streak: u32,
    /// Consecutive errors (5xx, resets) seen in responses.
    pub errors: u32,
    /// Passively ejected until this time (ms since the epoch); 0 = never ejected.
    pub ejected_until_ms: u64,
    /// Ejections so far: the next ejection lasts `base x (ejections + 1)`.
    pub ejections: u32,
    /// When `ejections` next decays by one while the member behaves.
    pub decay_at_ms: u64,
    /// When the member came up (or was first seen), for slow start.
    pub since_ms: u64,
}

impl MemberHealth {
    pub fn new(now_ms: u64) -> Self {
        MemberHealth {
            up: true,
            ok_streak: 0,
            fail_streak: 0,
            errors: 0,
            ejected_until_ms: 0,
            ejections: 0,
            decay_at_ms: 0,
            since_ms: now_ms,
        }
    }

    pub fn ejected(&self, now_ms: u64) -> bool {
        now_ms < self.ejected_until_ms
    }

    pub fn healthy(&self, now_ms: u64) -> bool {
        self.up && !self.ejected(now_ms)
    }

    /// When the member last became usable: coming up, or the end of its last ejection.
    pub fn healthy_since(&self) -> u64 {
        self.since_ms.max(self.ejected_until_ms)
    }
}

/// What a response did to a member's passive state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassiveEffect {
    /// Nothing to write back.
    Unchanged,
    /// Counters moved; write back.
    Changed,
    /// The member was ejected for this many milliseconds.
    Ejected(u64),
    /// The member reached its error threshold but was not ejected: that would have taken the
    /// ejected members past `maxEjectionPercent`. Its error count restarts; write back.
    Refused,
}

/// The health of every member of one service, as stored in shared data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthState {
    pub members: BTreeMap<String, MemberHealth>,
}

const FORMAT: u8 = 1;

impl HealthState {
    pub fn get(&self, name: &str) -> Option<&MemberHealth> {
        self.members.get(name)
    }

    fn entry(&mut self, name: &str, now_ms: u64) -> &mut MemberHealth {
        self.members
            .entry(name.to_string())
            .or_insert_with(|| MemberHealth::new(now_ms))
    }

    /// Adds members this config knows and the state does not (a config change added them),
    /// starting their slow start now. True when something was added.
    pub fn reconcile<'a>(&mut self, names: impl IntoIterator<Item = &'a str>, now_ms: u64) -> bool {
        let mut added = false;
        for n in names {
            if !self.members.contains_key(n) {
                self.members
                    .insert(n.to_string(), MemberHealth::new(now_ms));
                added = true;
            }
        }
        added
    }

    /// Records an active check. Returns the new verdict when it flipped; a passing check
    /// also ends a passive ejection (Envoy's `successful_active_health_check_uneject_host`,
    /// on by default), which counts as coming up: a member that was killed and ejected gets
    /// traffic back at its first passing check instead of after the ejection time.
    pub fn record_check(
        &mut self,
        name: &str,
        ok: bool,
        now_ms: u64,
        policy: &ActiveHealth,
    ) -> Option<bool> {
        let m = self.entry(name, now_ms);
        if ok {
            m.ok_streak = m.ok_streak.saturating_add(1);
            m.fail_streak = 0;
            if !m.up && m.ok_streak >= policy.healthy_threshold.max(1) {
                m.up = true;
                m.since_ms = now_ms;
                if m.ejected(now_ms) {
                    m.ejected_until_ms = now_ms;
                    m.errors = 0;
                }
                return Some(true);
            }
            if m.up && m.ejected(now_ms) {
                m.ejected_until_ms = now_ms;
                m.errors = 0;
                return Some(true);
            }
        } else {
            m.fail_streak = m.fail_streak.saturating_add(1);
            m.ok_streak = 0;
            if m.up && m.fail_streak >= policy.unhealthy_threshold.max(1) {
                m.up = false;
                return Some(false);
            }
        }
        None
    }

    /// Records what a response showed: `error` for a 5xx or a reset. `members` are the
    /// service's members (a selector's [`member_names`](super::Selector::member_names)):
    /// the ejection cap is a share of them, counted in this state, so every worker that
    /// updates it with compare-and-swap decides against the same ejections.
    pub fn record_response<'a>(
        &mut self,
        name: &str,
        error: bool,
        now_ms: u64,
        policy: &PassiveHealth,
        members: impl IntoIterator<Item = &'a str>,
    ) -> PassiveEffect {
        let m = self.entry(name, now_ms);
        if m.ejected(now_ms) {
            // Late responses of requests sent before the ejection say nothing new.
            return PassiveEffect::Unchanged;
        }
        let mut changed = false;
        // A member that behaves for a base ejection time earns back one ejection.
        if m.ejections > 0 && now_ms >= m.decay_at_ms {
            m.ejections -= 1;
            m.decay_at_ms = now_ms.saturating_add(policy.base_ejection_ms);
            changed = true;
        }
        if !error {
            if m.errors > 0 {
                m.errors = 0;
                changed = true;
            }
            return if changed {
                PassiveEffect::Changed
            } else {
                PassiveEffect::Unchanged
            };
        }
        m.errors = m.errors.saturating_add(1);
        if m.errors < policy.consecutive_errors.max(1) {
            return PassiveEffect::Changed;
        }
        // Envoy restarts the count whether or not the ejection is allowed.
        m.errors = 0;
        if !self.may_eject(name, now_ms, policy, members) {
            return PassiveEffect::Refused;
        }
        let m = self.entry(name, now_ms);
        m.ejections = m.ejections.saturating_add(1);
        let ms = policy
            .base_ejection_ms
            .saturating_mul(u64::from(m.ejections))
            .min(policy.max_ejection_ms.max(policy.base_ejection_ms));
        m.ejected_until_ms = now_ms.saturating_add(ms);
        m.decay_at_ms = m.ejected_until_ms.saturating_add(policy.base_ejection_ms);
        PassiveEffect::Ejected(ms)
    }

    /// Envoy's rule (`DetectorImpl::ejectHost`): eject when `100 x (ejected + 1) / members`
    /// is at most `maxEjectionPercent`, or, with `alwaysEjectOne`, when none is ejected.
    /// Only passive ejections count (an actively failed member does not), and only members of
    /// `members`: state left behind by members a config change removed is ignored.
    fn may_eject<'a>(
        &self,
        name: &str,
        now_ms: u64,
        policy: &PassiveHealth,
        members: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        let (mut total, mut ejected, mut listed) = (0u64, 0u64, false);
        for n in members {
            total += 1;
            listed |= n == name;
            if self.members.get(n).is_some_and(|m| m.ejected(now_ms)) {
                ejected += 1;
            }
        }
        if !listed {
            // The member itself always counts, so a share is never taken of nothing.
            total += 1;
        }
        let percent = u64::from(policy.max_ejection_percent.min(100));
        (policy.always_eject_one && ejected == 0)
            || ejected.saturating_add(1).saturating_mul(100) <= percent.saturating_mul(total)
    }

    /// How many of `names` are passively ejected at `now_ms`.
    pub fn ejected_count<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        now_ms: u64,
    ) -> usize {
        names
            .into_iter()
            .filter(|n| self.members.get(*n).is_some_and(|m| m.ejected(now_ms)))
            .count()
    }

    /// What `names` (a selector's members, in order) look like at `now_ms`. A member the
    /// state does not know is healthy at full weight.
    pub fn view<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        now_ms: u64,
        slow_start_ms: Option<u64>,
    ) -> HealthView {
        let mut ramping_until_ms = 0;
        let members = names
            .into_iter()
            .map(|n| match self.members.get(n) {
                None => MemberView::FULL,
                Some(m) => {
                    let healthy = m.healthy(now_ms);
                    let mut weight_permille = 1000;
                    if let (true, Some(window)) = (healthy, slow_start_ms.filter(|w| *w > 0)) {
                        let age = now_ms.saturating_sub(m.healthy_since());
                        if age < window {
                            // Linear ramp from 10% so a new member is never starved entirely.
                            weight_permille = (100 + 900 * age / window) as u16;
                            ramping_until_ms = ramping_until_ms.max(m.healthy_since() + window);
                        }
                    }
                    if !healthy && m.up {
                        // An ejection ends by time alone: the view must be rebuilt then.
                        ramping_until_ms = ramping_until_ms.max(m.ejected_until_ms);
                    }
                    MemberView {
                        healthy,
                        weight_permille,
                    }
                }
            })
            .collect();
        HealthView {
            members,
            changes_at_ms: ramping_until_ms,
        }
    }

    /// Encodes for shared data: a format byte, then per member its name and counters.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.members.len() * 64);
        out.push(FORMAT);
        out.extend_from_slice(&(self.members.len().min(u16::MAX as usize) as u16).to_le_bytes());
        for (name, m) in self.members.iter().take(u16::MAX as usize) {
            let name = name
                .as_bytes()
                .get(..name.len().min(u16::MAX as usize))
                .unwrap_or_default();
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name);
            out.push(u8::from(m.up));
            for v in [m.ok_streak, m.fail_streak, m.errors, m.ejections] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [m.ejected_until_ms, m.decay_at_ms, m.since_ms] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    /// Decodes what [`encode`](Self::encode) wrote; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader(bytes);
        if r.take(1)? != [FORMAT] {
            return None;
        }
        let count = r.u16()?;
        let mut members = BTreeMap::new();
        for _ in 0..count {
            let len = r.u16()?;
            let name = String::from_utf8(r.take(usize::from(len))?.to_vec()).ok()?;
            let up = r.take(1)? != [0];
            let (ok_streak, fail_streak, errors, ejections) =
                (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
            let (ejected_until_ms, decay_at_ms, since_ms) = (r.u64()?, r.u64()?, r.u64()?);
            members.insert(
                name,
                MemberHealth {
                    up,
                    ok_streak,
                    fail_streak,
                    errors,
                    ejected_until_ms,
                    ejections,
                    decay_at_ms,
                    since_ms,
                },
            );
        }
        r.0.is_empty().then_some(HealthState { members })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// One member as selection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberView {
    pub healthy: bool,
    /// Slow-start factor, 100..=1000 (1000 = full weight).
    pub weight_permille: u16,
}

impl MemberView {
    pub const FULL: MemberView = MemberView {
        healthy: true,
        weight_permille: 1000,
    };
    pub const DOWN: MemberView = MemberView {
        healthy: false,
        weight_permille: 1000,
    };
}

/// The health of a selector's members, in the selector's member order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthView {
    pub members: Vec<MemberView>,
    /// The view depends on time until then (slow start, an ejection ending): rebuild it once
    /// that time is reached, even if the shared state did not change. 0 = never.
    pub changes_at_ms: u64,
}

impl HealthView {
    pub fn all_healthy(len: usize) -> Self {
        HealthView {
            members: vec![MemberView::FULL; len],
            changes_at_ms: 0,
        }
    }

    /// All healthy except the members whose index is in `down`.
    pub fn with_down(len: usize, down: &[usize]) -> Self {
        let mut v = Self::all_healthy(len);
        for &i in down {
            if let Some(m) = v.members.get_mut(i) {
                *m = MemberView::DOWN;
            }
        }
        v
    }

    pub fn get(&self, i: usize) -> MemberView {
        self.members.get(i).copied().unwrap_or(MemberView::FULL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(up: u32, down: u32) -> ActiveHealth {
        ActiveHealth {
            path: "/h".into(),
            host: None,
            interval_ms: 1000,
            timeout_ms: 500,
            healthy_threshold: up,
            unhealthy_threshold: down,
        }
    }

    fn passive(errors: u32, base: u64, max: u64) -> PassiveHealth {
        PassiveHealth {
            consecutive_errors: errors,
            base_ejection_ms: base,
            max_ejection_ms: max,
            ..PassiveHealth::default()
        }
    }

    #[test]
    fn active_checks_flip_only_after_thresholds() {
        let p = active(2, 3);
        let mut s = HealthState::default();
        let seq = [
            (false, None),
            (false, None),
            (true, None),
            (false, None),
            (false, None),
            (false, Some(false)),
            (true, None),
            (true, Some(true)),
            (true, None),
        ];
        for (i, (ok, want)) in seq.into_iter().enumerate() {
            assert_eq!(s.record_check("a", ok, i as u64, &p), want, "step {i}");
        }
        assert!(s.get("a").unwrap().healthy(100));
    }

    #[test]
    fn a_passing_active_check_ends_a_passive_ejection() {
        let mut s = HealthState::default();
        let p = passive(1, 30_000, 60_000);
        assert!(matches!(
            s.record_response("a", true, 0, &p, ["a"]),
            PassiveEffect::Ejected(30_000)
        ));
        assert!(!s.get("a").unwrap().healthy(10));
        // A failing check keeps it out; the first passing one brings it back at once.
        assert_eq!(s.record_check("a", false, 10, &active(1, 2)), None);
        assert!(!s.get("a").unwrap().healthy(10));
        assert_eq!(s.record_check("a", true, 20, &active(1, 2)), Some(true));
        assert!(s.get("a").unwrap().healthy(20));
        // Killed, checked down and ejected: coming up also ends the ejection.
        s.record_check("a", false, 30, &active(1, 1));
        s.record_response("a", true, 40, &p, ["a"]);
        assert!(!s.get("a").unwrap().healthy(50));
        assert_eq!(s.record_check("a", true, 50, &active(1, 1)), Some(true));
        assert!(s.get("a").unwrap().healthy(50));
    }

    #[test]
    fn ejection_time_grows_with_each_ejection_and_is_capped() {
        let p = passive(2, 1000, 2500);
        let mut s = HealthState::default();
        let mut now = 0;
        let mut ejections = Vec::new();
        for _ in 0..3 {
            assert_eq!(
                s.record_response("a", true, now, &p, ["a"]),
                PassiveEffect::Changed
            );
            match s.record_response("a", true, now, &p, ["a"]) {
                PassiveEffect::Ejected(ms) => ejections.push(ms),
                e => panic!("expected ejection, got {e:?}"),
            }
            assert!(!s.get("a").unwrap().healthy(now));
            // Responses during the ejection change nothing.
            assert_eq!(
                s.record_response("a", true, now + 1, &p, ["a"]),
                PassiveEffect::Unchanged
            );
            now = s.get("a").unwrap().ejected_until_ms;
            assert!(s.get("a").unwrap().healthy(now));
        }
        assert_eq!(ejections, [1000, 2000, 2500]);
    }

    #[test]
    fn a_success_resets_consecutive_errors_and_good_behaviour_decays_ejections() {
        let p = passive(2, 1000, 10_000);
        let mut s = HealthState::default();
        s.record_response("a", true, 0, &p, ["a"]);
        assert_eq!(
            s.record_response("a", false, 0, &p, ["a"]),
            PassiveEffect::Changed
        );
        assert_eq!(
            s.record_response("a", false, 0, &p, ["a"]),
            PassiveEffect::Unchanged
        );
        assert_eq!(
            s.record_response("a", true, 0, &p, ["a"]),
            PassiveEffect::Changed
        );
        assert!(matches!(
            s.record_response("a", true, 0, &p, ["a"]),
            PassiveEffect::Ejected(1000)
        ));
        // Ejection ends at 1000; one more base time of good behaviour forgets it.
        s.record_response("a", false, 2000, &p, ["a"]);
        assert_eq!(s.get("a").unwrap().ejections, 0);
        s.record_response("a", true, 2000, &p, ["a"]);
        assert!(matches!(
            s.record_response("a", true, 2000, &p, ["a"]),
            PassiveEffect::Ejected(1000)
        ));
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut s = HealthState::default();
        s.record_check("us-east", false, 5, &active(1, 1));
        s.record_response("eu-west", true, 7, &passive(1, 30, 60), ["eu-west"]);
        s.reconcile(["new", "us-east"], 9);
        let bytes = s.encode();
        assert_eq!(HealthState::decode(&bytes), Some(s));
        for bad in [&b""[..], b"\x02\x00\x00", &bytes[..bytes.len() - 1]] {
            assert_eq!(HealthState::decode(bad), None);
        }
    }

    #[test]
    fn view_ramps_slow_start_and_marks_unknown_members_healthy() {
        let mut s = HealthState::default();
        s.reconcile(["a"], 1000);
        let v = s.view(["a", "b"], 1500, Some(1000));
        assert_eq!(
            v.members[0],
            MemberView {
                healthy: true,
                weight_permille: 550
            }
        );
        assert_eq!(v.members[1], MemberView::FULL);
        assert_eq!(v.changes_at_ms, 2000);
        assert_eq!(s.view(["a"], 2000, Some(1000)).members[0], MemberView::FULL);
    }
}
