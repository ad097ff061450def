//! Locality tiers and how load spills between them, after Envoy's priority levels.
//!
//! Members are placed in tiers relative to the proxy: 0 = same zone, 1 = same region (other
//! zone), 2 = anywhere else. A tier's health is `min(100, factor x 100 x healthy / total)`
//! (Envoy's overprovisioning, factor 1.4 by default), so a tier at 5 of 7 healthy still takes
//! all the load, and one below 1/1.4 sheds only the part it cannot cover. Loads are handed out
//! in tier order, each tier taking what its health allows of what is left; when the healths
//! sum below 100 they are scaled up so the whole load is still placed.

/// Number of tiers: same zone, same region, anywhere.
pub const TIERS: usize = 3;

/// The proxy's own place. Unknown parts make fewer tiers: without a zone, "same zone" is
/// "same region"; without a region every member is in tier 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locality {
    pub region: Option<String>,
    pub zone: Option<String>,
}

impl Locality {
    pub fn new(region: Option<&str>, zone: Option<&str>) -> Self {
        let own = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
        Locality {
            region: own(region),
            zone: own(zone),
        }
    }

    /// The proxy's own place from its node description, read through `property` (a non-empty
    /// string property or `None`): the node metadata's `REGION`/`ZONE`, else the node's
    /// locality. Envoy 1.40 serves the node as `xds.node`, older releases as `node`. `None`
    /// without a region.
    pub fn from_node(property: impl Fn(&[&str]) -> Option<String>) -> Option<Self> {
        let node = |path: &[&str]| {
            let xds: Vec<&str> = ["xds", "node"].iter().chain(path).copied().collect();
            let plain: Vec<&str> = ["node"].iter().chain(path).copied().collect();
            property(&xds).or_else(|| property(&plain))
        };
        let region = node(&["metadata", "REGION"]).or_else(|| node(&["locality", "region"]));
        let zone = node(&["metadata", "ZONE"]).or_else(|| node(&["locality", "zone"]));
        region
            .is_some()
            .then(|| Locality::new(region.as_deref(), zone.as_deref()))
    }

    /// The tier of a member at (`region`, `zone`).
    pub fn tier(&self, region: Option<&str>, zone: Option<&str>) -> u8 {
        let Some(own_region) = self.region.as_deref() else {
            return 0;
        };
        if region != Some(own_region) {
            return 2;
        }
        match (self.zone.as_deref(), zone) {
            (None, _) => 0,
            (Some(a), Some(b)) if a == b => 0,
            _ => 1,
        }
    }
}

/// A tier's health in percent: `min(100, factor% x healthy / total)`; an empty tier is 0.
pub fn tier_health(healthy: u32, total: u32, overprovisioning: u32) -> f64 {
    if total == 0 {
        return 0.0;
    }
    (f64::from(overprovisioning) * f64::from(healthy) / f64::from(total)).min(100.0)
}

/// The share of the load (percent, summing to 100) each tier takes, from (healthy, total)
/// member counts per tier. `None` when no tier has a healthy member: the caller panics or
/// rejects.
pub fn tier_loads(counts: &[(u32, u32); TIERS], overprovisioning: u32) -> Option<[f64; TIERS]> {
    let health = counts.map(|(h, t)| tier_health(h, t, overprovisioning));
    let total: f64 = health.iter().sum::<f64>().min(100.0);
    if total <= 0.0 {
        return None;
    }
    let mut left = 100.0;
    let mut loads = [0.0; TIERS];
    for (load, h) in loads.iter_mut().zip(health) {
        let take = (h * 100.0 / total).min(left);
        *load = take;
        left -= take;
    }
    Some(loads)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f64; 3], b: [f64; 3]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn tiers_follow_zone_then_region_then_anywhere() {
        let me = Locality::new(Some("us"), Some("us-a"));
        let cases = [
            (Some("us"), Some("us-a"), 0),
            (Some("us"), Some("us-b"), 1),
            (Some("us"), None, 1),
            (Some("eu"), Some("us-a"), 2),
            (None, None, 2),
        ];
        for (region, zone, want) in cases {
            assert_eq!(me.tier(region, zone), want, "{region:?}/{zone:?}");
        }
        assert_eq!(
            Locality::new(Some("us"), None).tier(Some("us"), Some("x")),
            0
        );
        assert_eq!(Locality::default().tier(Some("eu"), None), 0);
    }

    #[test]
    fn loads_spill_only_what_a_tier_cannot_cover() {
        struct Case {
            name: &'static str,
            counts: [(u32, u32); 3],
            want: Option<[f64; 3]>,
        }
        let cases = [
            Case {
                name: "all healthy: local takes all",
                counts: [(2, 2), (1, 1), (3, 3)],
                want: Some([100.0, 0.0, 0.0]),
            },
            Case {
                name: "5 of 7 healthy is still covered by 1.4",
                counts: [(5, 7), (1, 1), (0, 0)],
                want: Some([100.0, 0.0, 0.0]),
            },
            Case {
                name: "half healthy sheds 30%",
                counts: [(1, 2), (2, 2), (0, 0)],
                want: Some([70.0, 30.0, 0.0]),
            },
            Case {
                name: "local down: region takes all",
                counts: [(0, 1), (1, 1), (1, 1)],
                want: Some([0.0, 100.0, 0.0]),
            },
            Case {
                name: "zone and region down: anywhere",
                counts: [(0, 1), (0, 2), (2, 2)],
                want: Some([0.0, 0.0, 100.0]),
            },
            Case {
                name: "partly healthy everywhere is scaled up to 100",
                counts: [(1, 4), (1, 4), (0, 4)],
                want: Some([50.0, 50.0, 0.0]),
            },
            Case {
                name: "empty tiers are skipped",
                counts: [(0, 0), (0, 0), (1, 1)],
                want: Some([0.0, 0.0, 100.0]),
            },
            Case {
                name: "nothing healthy",
                counts: [(0, 1), (0, 1), (0, 1)],
                want: None,
            },
        ];
        for c in cases {
            let got = tier_loads(&c.counts, 140);
            match (got, c.want) {
                (Some(g), Some(w)) => assert!(close(g, w), "{}: {g:?} != {w:?}", c.name),
                (g, w) => assert_eq!(g, w, "{}", c.name),
            }
        }
    }
}
