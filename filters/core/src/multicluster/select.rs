//! The compiled selector of one multi-cluster service and its `pick`.
//!
//! Per pick, in order: a canary header/cookie match forces the canary; a request with an
//! affinity key is placed by hashing (canary share, then locality tier, then weighted
//! rendezvous inside the tier); one without a key takes the next slot of this worker's smooth
//! weighted round robin, whose weights already fold in the canary share, the tier loads and
//! health. The weights are recomputed only when the health view changes.

use std::collections::BTreeSet;

use super::cookie::{cookie, is_cookie_name, is_cookie_path, CookieIssuer, MAX_TTL_SECONDS};
use super::health::HealthView;
use super::locality::{tier_loads, Locality, TIERS};
use super::rendezvous::{self, hash_bytes, mix, unit};
use super::swrr::Swrr;
use crate::config::{Affinity, AllUnhealthy, HealthPolicy, MultiClusterService};
use crate::error::{quote, ConfigError, ConfigErrorKind as K};
use crate::request::Random;

const CANARY_SALT: u64 = 0x6361_6e61_7279_0001;
const TIER_SALT: u64 = 0x7469_6572_0000_0002;
/// Fixed-point scale of the round-robin weights: shares are exact to about 1e-12.
const SCALE: f64 = (1u64 << 40) as f64;

/// One member cluster, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedMember {
    pub name: String,
    /// The Envoy cluster that reaches the service in this member cluster (health checks).
    pub cluster: String,
    /// Where requests are steered: the member's failover cluster, else `cluster`.
    pub route_cluster: String,
    pub weight: u32,
    pub region: Option<String>,
    pub zone: Option<String>,
    /// Tier relative to the proxy (0 same zone, 1 same region, 2 anywhere).
    pub tier: u8,
    hash: u64,
}

#[derive(Debug, Clone, PartialEq)]
struct CompiledCanary {
    member: usize,
    header: Option<(String, Vec<u8>)>,
    cookie: Option<(String, Vec<u8>)>,
    /// 0.0..=1.0
    share: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeySource {
    Header(String),
    Cookie(String),
    SourceAddress,
}

/// A compiled MultiClusterService: immutable, shared by every stream of a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    name: String,
    members: Vec<SelectedMember>,
    canary: Option<CompiledCanary>,
    affinity: Option<KeySource>,
    /// Set when the affinity cookie is generated for requests that lack it.
    cookie_issuer: Option<CookieIssuer>,
    /// Overprovisioning factor (percent) when locality is on.
    locality: Option<u32>,
    health: HealthPolicy,
    slow_start_ms: Option<u64>,
    needed_headers: Vec<String>,
}

/// What a pick needs from the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickInput<'a> {
    /// Values of [`Selector::needed_headers`]: lower-case names, raw bytes; repeats allowed.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// `source.address` as the proxy gives it (`ip:port`); the port is ignored.
    pub source_address: Option<&'a [u8]>,
    /// An affinity key given directly; takes precedence over the configured source.
    pub affinity_key: Option<&'a [u8]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Smooth weighted round robin (no affinity key).
    Weighted,
    /// Rendezvous hashing of the affinity key.
    Affinity,
    /// The canary header or cookie matched.
    CanaryForced,
    /// The canary's percentage share.
    CanaryShare,
    /// No member was healthy: spread over all of them by weight.
    Panic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick<'s> {
    /// Index into [`Selector::members`].
    pub member: usize,
    /// The Envoy cluster to steer to.
    pub cluster: &'s str,
    /// The member's locality tier: above 0 means a failover away from the proxy's zone.
    pub tier: u8,
    pub reason: Reason,
}

/// Why nothing was picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPick {
    /// No member is healthy and the service says `reject`: answer 503.
    AllUnhealthy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Normal,
    CanaryOnly,
    Panic,
    Reject,
}

/// Weights derived from a health view, recomputed only when the view changes.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    mode: Mode,
    /// Round-robin weights per member (canary share, tier load and health folded in).
    rr: Vec<u64>,
    /// Rendezvous weight per member inside its tier; 0 = not eligible.
    keyed: Vec<f64>,
    tier_loads: [f64; TIERS],
    canary_share: f64,
}

/// Per-worker selection state: the round-robin counters and the plan for the last view.
#[derive(Debug, Clone, Default)]
pub struct WorkerState {
    swrr: Swrr,
    plan: Option<(HealthView, Plan)>,
}

impl WorkerState {
    pub fn new() -> Self {
        Self::default()
    }
}

fn label<'m>(labels: &'m std::collections::BTreeMap<String, String>, key: &str) -> Option<&'m str> {
    labels
        .get(key)
        .or_else(|| labels.get(&format!("topology.kubernetes.io/{key}")))
        .map(String::as_str)
}

fn header_name(at: String, name: &str) -> Result<String, ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::new(at, K::EmptyName));
    }
    if !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(ConfigError::new(at, K::InvalidHeaderName(name.to_string())));
    }
    Ok(name.to_ascii_lowercase())
}

impl Selector {
    /// Compiles the service `name` as found in a router config (`multiClusterServices.<name>`).
    pub fn compile(name: &str, svc: &MultiClusterService) -> Result<Self, ConfigError> {
        Self::compile_at(&format!("multiClusterServices.{name}"), name, svc)
    }

    /// Compiles with errors reported under the field path `at`.
    pub fn compile_at(
        at: &str,
        name: &str,
        svc: &MultiClusterService,
    ) -> Result<Self, ConfigError> {
        let err = |field: String, kind: K| Err(ConfigError::new(field, kind));
        if svc.members.is_empty() {
            return err(format!("{at}.members"), K::NoMembers);
        }
        let mut seen = BTreeSet::new();
        for (i, m) in svc.members.iter().enumerate() {
            if m.name.is_empty() {
                return err(format!("{at}.members[{i}].name"), K::EmptyName);
            }
            if m.cluster.is_empty() {
                return err(format!("{at}.members[{i}].cluster"), K::EmptyName);
            }
            if m.failover_cluster.as_deref() == Some("") {
                return err(format!("{at}.members[{i}].failoverCluster"), K::EmptyName);
            }
            if !seen.insert(&m.name) {
                return err(
                    format!("{at}.members[{i}].name"),
                    K::DuplicateMember(m.name.clone()),
                );
            }
        }
        // The seed's `clusters: [{selector: {matchLabels}}]`, OR'ed; each AND's its labels.
        let selected = svc.members.iter().filter(|m| {
            svc.clusters.is_empty()
                || svc.clusters.iter().any(|c| {
                    c.selector
                        .match_labels
                        .iter()
                        .all(|(k, v)| m.labels.get(k) == Some(v))
                })
        });
        let members: Vec<SelectedMember> = selected
            .map(|m| SelectedMember {
                name: m.name.clone(),
                cluster: m.cluster.clone(),
                route_cluster: m
                    .failover_cluster
                    .clone()
                    .unwrap_or_else(|| m.cluster.clone()),
                weight: m.weight,
                region: label(&m.labels, "region").map(str::to_string),
                zone: label(&m.labels, "zone").map(str::to_string),
                tier: 0,
                hash: hash_bytes(m.name.as_bytes(), 0x6d65_6d62),
            })
            .collect();
        if members.is_empty() {
            return err(format!("{at}.clusters"), K::NoSelectedMembers);
        }
        let mut needed = BTreeSet::new();
        let canary = match &svc.canary {
            None => None,
            Some(c) => {
                let cat = format!("{at}.canary");
                let Some(member) = members.iter().position(|m| m.name == c.member) else {
                    return err(format!("{cat}.member"), K::UnknownMember(c.member.clone()));
                };
                if !(0.0..=100.0).contains(&c.percent) {
                    return err(format!("{cat}.percent"), K::OutOfRange("0..=100"));
                }
                let header = match &c.header {
                    None => None,
                    Some(h) => {
                        let n = header_name(format!("{cat}.header.name"), &h.name)?;
                        needed.insert(n.clone());
                        Some((n, h.value.as_bytes().to_vec()))
                    }
                };
                let cookie = match &c.cookie {
                    None => None,
                    Some(ck) => {
                        if ck.name.is_empty() {
                            return err(format!("{cat}.cookie.name"), K::EmptyName);
                        }
                        needed.insert("cookie".to_string());
                        Some((ck.name.clone(), ck.value.as_bytes().to_vec()))
                    }
                };
                Some(CompiledCanary {
                    member,
                    header,
                    cookie,
                    share: c.percent / 100.0,
                })
            }
        };
        let canary_idx = canary.as_ref().map(|c| c.member);
        let normal_weight: u64 = members
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != canary_idx)
            .map(|(_, m)| u64::from(m.weight))
            .sum();
        if normal_weight == 0 {
            return err(format!("{at}.members"), K::ZeroWeights);
        }
        let mut cookie_issuer = None;
        let affinity = match &svc.affinity {
            None => None,
            Some(Affinity::Header(h)) => {
                let n = header_name(format!("{at}.affinity.header"), h)?;
                needed.insert(n.clone());
                Some(KeySource::Header(n))
            }
            Some(Affinity::Cookie(c)) => {
                let cat = format!("{at}.affinity.cookie");
                let plain = c.ttl_seconds.is_none() && c.path.is_none();
                if c.name.is_empty() {
                    let field = if plain { cat } else { format!("{cat}.name") };
                    return err(field, K::EmptyName);
                }
                if let Some(ttl) = c.ttl_seconds {
                    // The name and path go into a response header: only what RFC 6265 allows.
                    if !is_cookie_name(&c.name) {
                        return err(format!("{cat}.name"), K::InvalidName(c.name.clone()));
                    }
                    if ttl > MAX_TTL_SECONDS {
                        return err(
                            format!("{cat}.ttlSeconds"),
                            K::OutOfRange("0..=34560000 (400 days)"),
                        );
                    }
                    let path = c.path.as_deref().unwrap_or("/");
                    if !is_cookie_path(path) {
                        return err(
                            format!("{cat}.path"),
                            K::InvalidPath(format!(
                                "{} must start with / and hold printable ASCII but `;`",
                                quote(path)
                            )),
                        );
                    }
                    cookie_issuer = Some(CookieIssuer::new(&c.name, ttl, path));
                } else if c.path.is_some() {
                    return err(format!("{cat}.path"), K::NeedsField("ttlSeconds"));
                }
                needed.insert("cookie".to_string());
                Some(KeySource::Cookie(c.name.clone()))
            }
            Some(Affinity::SourceAddress) => Some(KeySource::SourceAddress),
        };
        let locality = match &svc.locality {
            None => None,
            Some(l) if (1..=10_000).contains(&l.overprovisioning) => Some(l.overprovisioning),
            Some(_) => {
                return err(
                    format!("{at}.locality.overprovisioning"),
                    K::OutOfRange("1..=10000"),
                )
            }
        };
        let health = svc.health.clone().unwrap_or_default();
        if let Some(a) = &health.active {
            let hat = format!("{at}.health.active");
            if !a.path.starts_with('/') {
                return err(
                    format!("{hat}.path"),
                    K::InvalidPath(format!("{} must start with /", quote(&a.path))),
                );
            }
            if a.interval_ms < 10 {
                return err(format!("{hat}.intervalMs"), K::OutOfRange(">= 10"));
            }
            if a.timeout_ms == 0 {
                return err(format!("{hat}.timeoutMs"), K::OutOfRange(">= 1"));
            }
            if a.healthy_threshold == 0 {
                return err(format!("{hat}.healthyThreshold"), K::OutOfRange(">= 1"));
            }
            if a.unhealthy_threshold == 0 {
                return err(format!("{hat}.unhealthyThreshold"), K::OutOfRange(">= 1"));
            }
        }
        if let Some(p) = &health.passive {
            let pat = format!("{at}.health.passive");
            if p.consecutive_errors == 0 {
                return err(format!("{pat}.consecutiveErrors"), K::OutOfRange(">= 1"));
            }
            if p.base_ejection_ms == 0 {
                return err(format!("{pat}.baseEjectionMs"), K::OutOfRange(">= 1"));
            }
            if p.max_ejection_percent > 100 {
                return err(
                    format!("{pat}.maxEjectionPercent"),
                    K::OutOfRange("0..=100"),
                );
            }
        }
        Ok(Selector {
            name: name.to_string(),
            members,
            canary,
            affinity,
            cookie_issuer,
            locality,
            health,
            slow_start_ms: svc.slow_start_ms.filter(|&w| w > 0),
            needed_headers: needed.into_iter().collect(),
        })
    }

    /// Places members in tiers relative to the proxy. Without a `locality` policy in the
    /// service, every member stays in tier 0.
    pub fn set_locality(&mut self, proxy: &Locality) {
        let on = self.locality.is_some();
        for m in &mut self.members {
            m.tier = if on {
                proxy.tier(m.region.as_deref(), m.zone.as_deref())
            } else {
                0
            };
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn members(&self) -> &[SelectedMember] {
        &self.members
    }

    pub fn member_names(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.name.as_str())
    }

    /// Lower-case names of the request headers `pick` looks at (affinity, canary, `cookie`).
    pub fn needed_headers(&self) -> &[String] {
        &self.needed_headers
    }

    /// How the affinity cookie is issued, when the service generates it (`ttlSeconds`).
    pub fn cookie_issuer(&self) -> Option<&CookieIssuer> {
        self.cookie_issuer.as_ref()
    }

    /// The cookie to issue for a request with these headers: set when the service generates
    /// its affinity cookie and the request has none (or an empty one). The caller then picks
    /// with a fresh key ([`super::cookie::new_key`]) as `PickInput::affinity_key`, so the first
    /// request already lands where the ones carrying the cookie will, and hands the key to the
    /// client with [`CookieIssuer::set_cookie`].
    pub fn cookie_to_issue(&self, headers: &[(&str, &[u8])]) -> Option<&CookieIssuer> {
        self.cookie_issuer.as_ref().filter(|c| c.needed(headers))
    }

    /// Whether `pick` needs the client's address.
    pub fn needs_source_address(&self) -> bool {
        self.affinity == Some(KeySource::SourceAddress)
    }

    pub fn health_policy(&self) -> &HealthPolicy {
        &self.health
    }

    pub fn slow_start_ms(&self) -> Option<u64> {
        self.slow_start_ms
    }

    /// The member index whose Envoy cluster is `cluster`.
    pub fn member_by_cluster(&self, cluster: &str) -> Option<usize> {
        self.members.iter().position(|m| m.cluster == cluster)
    }

    /// Chooses the member cluster for one request or connection.
    pub fn pick(
        &self,
        input: &PickInput<'_>,
        health: &HealthView,
        state: &mut WorkerState,
        rng: &mut dyn Random,
    ) -> Result<Pick<'_>, NoPick> {
        let fresh = state.swrr.len() != self.members.len();
        if fresh {
            state.swrr = Swrr::new(self.members.len());
        }
        if fresh || state.plan.as_ref().is_none_or(|(v, _)| v != health) {
            let plan = self.plan(health);
            if fresh {
                state.swrr.randomize(&plan.rr, rng);
            }
            state.plan = Some((health.clone(), plan));
        }
        let Some((_, plan)) = &state.plan else {
            return Err(NoPick::AllUnhealthy);
        };
        if plan.mode == Mode::Reject {
            return Err(NoPick::AllUnhealthy);
        }
        if let Some(c) = &self.canary {
            if plan.mode != Mode::Panic
                && health.get(c.member).healthy
                && self.canary_forced(c, input)
            {
                return Ok(self.result(c.member, Reason::CanaryForced));
            }
        }
        let panic_or = |r| {
            if plan.mode == Mode::Panic {
                Reason::Panic
            } else {
                r
            }
        };
        if let Some(key) = self.affinity_key(input) {
            let kh = hash_bytes(key, 0);
            if let Some(i) = self.pick_keyed(kh, plan) {
                let reason = if Some(i) == self.canary.as_ref().map(|c| c.member) {
                    Reason::CanaryShare
                } else {
                    panic_or(Reason::Affinity)
                };
                return Ok(self.result(i, reason));
            }
        }
        let i = state.swrr.pick(&plan.rr).ok_or(NoPick::AllUnhealthy)?;
        let reason = if Some(i) == self.canary.as_ref().map(|c| c.member) {
            Reason::CanaryShare
        } else {
            panic_or(Reason::Weighted)
        };
        Ok(self.result(i, reason))
    }

    fn result(&self, i: usize, reason: Reason) -> Pick<'_> {
        let m = self.members.get(i);
        Pick {
            member: i,
            cluster: m.map_or("", |m| m.route_cluster.as_str()),
            tier: m.map_or(0, |m| m.tier),
            reason,
        }
    }

    fn canary_forced(&self, c: &CompiledCanary, input: &PickInput<'_>) -> bool {
        let by_header = c.header.as_ref().is_some_and(|(n, v)| {
            input
                .headers
                .iter()
                .any(|(hn, hv)| *hn == n && *hv == v.as_slice())
        });
        by_header
            || c.cookie
                .as_ref()
                .is_some_and(|(n, v)| cookie(input.headers, n) == Some(v.as_slice()))
    }

    fn affinity_key<'a>(&self, input: &PickInput<'a>) -> Option<&'a [u8]> {
        if input.affinity_key.is_some() {
            return input.affinity_key;
        }
        match self.affinity.as_ref()? {
            KeySource::Header(n) => input
                .headers
                .iter()
                .find(|(hn, _)| hn == n)
                .map(|&(_, v)| v),
            KeySource::Cookie(n) => cookie(input.headers, n),
            KeySource::SourceAddress => input.source_address.map(strip_port),
        }
        .filter(|k| !k.is_empty())
    }

    fn pick_keyed(&self, kh: u64, plan: &Plan) -> Option<usize> {
        let canary = self.canary.as_ref().map(|c| c.member);
        match plan.mode {
            Mode::Reject => return None,
            Mode::CanaryOnly => return canary,
            Mode::Panic | Mode::Normal => {}
        }
        if plan.canary_share > 0.0 && unit(mix(kh ^ CANARY_SALT)) < plan.canary_share {
            return canary;
        }
        // The tier, by the key: the same key stays in the same tier while loads hold.
        let mut at = unit(mix(kh ^ TIER_SALT)) * 100.0;
        let mut tier = plan.tier_loads.iter().rposition(|&l| l > 0.0).unwrap_or(0);
        for (t, &l) in plan.tier_loads.iter().enumerate() {
            if l > 0.0 && at < l {
                tier = t;
                break;
            }
            at -= l;
        }
        let candidates =
            self.members
                .iter()
                .zip(&plan.keyed)
                .enumerate()
                .filter_map(|(i, (m, &w))| {
                    (plan.mode == Mode::Panic || usize::from(m.tier) == tier)
                        .then_some((i, m.hash, w))
                });
        rendezvous::pick(kh, candidates)
    }

    fn plan(&self, health: &HealthView) -> Plan {
        let n = self.members.len();
        let canary = self.canary.as_ref().map(|c| c.member);
        let is_normal = |i: usize| Some(i) != canary;
        let mut counts = [(0u32, 0u32); TIERS];
        let mut tier_weight = [0f64; TIERS];
        let mut keyed = vec![0f64; n];
        for (i, (m, k)) in self.members.iter().zip(keyed.iter_mut()).enumerate() {
            if !is_normal(i) || m.weight == 0 {
                continue;
            }
            let v = health.get(i);
            let t = usize::from(m.tier).min(TIERS - 1);
            if let Some(c) = counts.get_mut(t) {
                c.1 += 1;
                c.0 += u32::from(v.healthy);
            }
            if v.healthy {
                *k = f64::from(m.weight) * f64::from(v.weight_permille) / 1000.0;
                if let Some(w) = tier_weight.get_mut(t) {
                    *w += *k;
                }
            }
        }
        let canary_ok = canary.is_some_and(|c| health.get(c).healthy);
        let mut rr = vec![0u64; n];
        let overprovisioning = self.locality.unwrap_or(140);
        let Some(tier_loads) = tier_loads(&counts, overprovisioning) else {
            if let (true, Some(c)) = (canary_ok, canary) {
                if let Some(w) = rr.get_mut(c) {
                    *w = SCALE as u64;
                }
                return Plan {
                    mode: Mode::CanaryOnly,
                    rr,
                    keyed,
                    tier_loads: [0.0; TIERS],
                    canary_share: 1.0,
                };
            }
            if self.health.on_all_unhealthy == AllUnhealthy::Reject {
                return Plan {
                    mode: Mode::Reject,
                    rr,
                    keyed,
                    tier_loads: [0.0; TIERS],
                    canary_share: 0.0,
                };
            }
            // Panic: every normal member at its configured weight, health and tiers ignored.
            // Round-robin weights keep the same scale as in every other plan: the counters
            // carry over between plans, and a smaller scale would leave them stuck.
            let total: f64 = self
                .members
                .iter()
                .enumerate()
                .filter(|(i, _)| is_normal(*i))
                .map(|(_, m)| f64::from(m.weight))
                .sum();
            for (i, (m, (w, k))) in self
                .members
                .iter()
                .zip(rr.iter_mut().zip(keyed.iter_mut()))
                .enumerate()
            {
                if is_normal(i) && total > 0.0 {
                    *w = (f64::from(m.weight) / total * SCALE).round() as u64;
                    *k = f64::from(m.weight);
                }
            }
            return Plan {
                mode: Mode::Panic,
                rr,
                keyed,
                tier_loads: [100.0, 0.0, 0.0],
                canary_share: 0.0,
            };
        };
        let canary_share = match (&self.canary, canary_ok) {
            (Some(c), true) => c.share,
            _ => 0.0,
        };
        for (m, (w, &k)) in self.members.iter().zip(rr.iter_mut().zip(&keyed)) {
            let t = usize::from(m.tier).min(TIERS - 1);
            let (load, total) = (
                tier_loads.get(t).copied().unwrap_or(0.0),
                tier_weight.get(t).copied().unwrap_or(0.0),
            );
            if k > 0.0 && total > 0.0 {
                *w = ((1.0 - canary_share) * load / 100.0 * k / total * SCALE).round() as u64;
            }
        }
        if let (Some(c), true) = (canary, canary_share > 0.0) {
            if let Some(w) = rr.get_mut(c) {
                *w = (canary_share * SCALE).round() as u64;
            }
        }
        Plan {
            mode: Mode::Normal,
            rr,
            keyed,
            tier_loads,
            canary_share,
        }
    }
}

/// `1.2.3.4:5678` -> `1.2.3.4`, `[::1]:80` -> `::1`; a bare address is kept.
pub fn strip_port(addr: &[u8]) -> &[u8] {
    if let Some(rest) = addr.strip_prefix(b"[") {
        let end = rest.iter().position(|&b| b == b']').unwrap_or(rest.len());
        return rest.get(..end).unwrap_or(rest);
    }
    let colons = addr.iter().filter(|&&b| b == b':').count();
    match (colons, addr.iter().rposition(|&b| b == b':')) {
        (1, Some(c)) => addr.get(..c).unwrap_or(addr),
        _ => addr,
    }
}
