//! Checks a `Cybs3` spec the way `cybs3 server start` and `cybs3 admin pool|tier add` would,
//! so that a mistake shows as a Degraded condition at once instead of a crash-looping pod.

use crate::crd::{Cybs3Spec, Drives, Tier};
use crate::error::SpecError;

/// The store's own pool, always present.
pub const MAIN_POOL: &str = "main";

/// Validates the whole spec.
pub fn validate(spec: &Cybs3Spec) -> Result<(), SpecError> {
    check_drives("drives", &spec.drives, spec.ec.as_deref())?;
    let mut seen = Vec::new();
    for pool in &spec.pools {
        if !valid_pool_name(&pool.name) {
            return Err(SpecError::PoolName(pool.name.clone()));
        }
        if seen.contains(&pool.name.as_str()) {
            return Err(SpecError::DuplicatePool(pool.name.clone()));
        }
        seen.push(&pool.name);
        check_drives(
            &format!("pool {}", pool.name),
            &pool.drives,
            pool.ec.as_deref(),
        )?;
    }
    for tier in &spec.tiers {
        check_tier(tier, &seen)?;
    }
    Ok(())
}

fn check_drives(what: &str, drives: &Drives, ec: Option<&str>) -> Result<(), SpecError> {
    if !(1..=64).contains(&drives.count) {
        return Err(SpecError::DriveCount(what.into()));
    }
    if !valid_quantity(&drives.size) {
        return Err(SpecError::DriveSize(what.into()));
    }
    if let Some(ec) = ec {
        let (k, m) = parse_ec(ec)?;
        if k + m != drives.count {
            return Err(SpecError::EcDriveMismatch {
                what: what.into(),
                ec: ec.into(),
                drives: drives.count,
            });
        }
    }
    Ok(())
}

fn check_tier(tier: &Tier, pools: &[&str]) -> Result<(), SpecError> {
    let c = &tier.class;
    let class_ok = !c.is_empty()
        && c.len() <= 64
        && c.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !class_ok {
        return Err(SpecError::ClassName(c.clone()));
    }
    match (&tier.pool, &tier.remote) {
        (Some(pool), None) if pool == MAIN_POOL || pools.contains(&pool.as_str()) => Ok(()),
        (Some(pool), None) => Err(SpecError::UnknownPool {
            class: c.clone(),
            pool: pool.clone(),
        }),
        (None, Some(_)) => Ok(()),
        _ => Err(SpecError::TierTarget(c.clone())),
    }
}

/// `K+M` as `cybs3 server start --ec` takes it.
pub fn parse_ec(ec: &str) -> Result<(u32, u32), SpecError> {
    let bad = || SpecError::BadEc(ec.into());
    let (k, m) = ec.split_once('+').ok_or_else(bad)?;
    let k: u32 = k.trim().parse().map_err(|_| bad())?;
    let m: u32 = m.trim().parse().map_err(|_| bad())?;
    if k == 0 {
        return Err(bad());
    }
    Ok((k, m))
}

/// Pool names as the engine accepts them; they also become parts of volume names, which
/// must be DNS labels, so '_' is turned into '-' there (see `desired::pool_claim`).
fn valid_pool_name(name: &str) -> bool {
    name != MAIN_POOL
        && !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// A plain Kubernetes quantity: digits, an optional fraction, an optional suffix. The API
/// server parses it for real; this catches the typical slip ("100 GB") before applying.
fn valid_quantity(q: &str) -> bool {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &q[digits.len()..];
    let number_ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1;
    let suffix_ok = matches!(
        suffix,
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "k" | "M" | "G" | "T" | "P" | "E"
    );
    number_ok && suffix_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Pool, RemoteTier, SecretKeyRef};

    fn spec(count: u32, ec: Option<&str>) -> Cybs3Spec {
        serde_json::from_value(serde_json::json!({
            "drives": {"count": count, "size": "10Gi"},
            "ec": ec,
        }))
        .unwrap()
    }

    #[test]
    fn ec_must_cover_the_drives() {
        assert_eq!(validate(&spec(6, Some("4+2"))), Ok(()));
        assert_eq!(validate(&spec(1, None)), Ok(()));
        assert!(matches!(
            validate(&spec(4, Some("4+2"))),
            Err(SpecError::EcDriveMismatch { drives: 4, .. })
        ));
        assert_eq!(
            validate(&spec(2, Some("0+2"))),
            Err(SpecError::BadEc("0+2".into()))
        );
        assert_eq!(
            validate(&spec(2, Some("2"))),
            Err(SpecError::BadEc("2".into()))
        );
        assert_eq!(
            validate(&spec(0, None)),
            Err(SpecError::DriveCount("drives".into()))
        );
    }

    #[test]
    fn sizes_are_quantities() {
        let mut s = spec(1, None);
        for ok in ["10Gi", "1.5Ti", "500M", "1000"] {
            s.drives.size = ok.into();
            assert_eq!(validate(&s), Ok(()), "{ok}");
        }
        for bad in ["10 GB", "Gi", "1.2.3Gi", ""] {
            s.drives.size = bad.into();
            assert!(validate(&s).is_err(), "{bad}");
        }
    }

    #[test]
    fn pools_and_tiers_are_checked() {
        let mut s = spec(1, None);
        let pool = |name: &str| Pool {
            name: name.into(),
            drives: s.drives.clone(),
            ec: None,
        };
        s.pools = vec![pool("big"), pool("main")];
        assert_eq!(validate(&s), Err(SpecError::PoolName("main".into())));
        s.pools = vec![pool("big"), pool("big")];
        assert_eq!(validate(&s), Err(SpecError::DuplicatePool("big".into())));
        s.pools = vec![pool("big")];
        let tier = |class: &str, pool: Option<&str>, remote: bool| Tier {
            class: class.into(),
            pool: pool.map(Into::into),
            remote: remote.then(|| RemoteTier {
                endpoint: "https://s3.example.org".into(),
                bucket: "cold".into(),
                prefix: None,
                region: None,
                access_key: "AK".into(),
                secret_key_ref: SecretKeyRef {
                    name: "s".into(),
                    key: "k".into(),
                },
            }),
            archive: false,
        };
        s.tiers = vec![
            tier("GLACIER", Some("big"), false),
            tier("COLD", None, true),
        ];
        assert_eq!(validate(&s), Ok(()));
        s.tiers = vec![tier("glacier", Some("big"), false)];
        assert_eq!(validate(&s), Err(SpecError::ClassName("glacier".into())));
        s.tiers = vec![tier("GLACIER", Some("small"), false)];
        assert!(matches!(validate(&s), Err(SpecError::UnknownPool { .. })));
        s.tiers = vec![tier("GLACIER", Some("big"), true)];
        assert_eq!(validate(&s), Err(SpecError::TierTarget("GLACIER".into())));
    }
}
