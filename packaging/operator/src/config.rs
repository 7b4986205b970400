//! What goes inside the pod: `server.toml` (keys named like `cybs3 server start` flags, as
//! in packaging/server.toml) and the post-start script that adds the spec's pools and
//! storage classes to the running store through its admin socket.

use crate::crd::{Cybs3Spec, Tier};
use std::fmt::Write;

/// Where the pod mounts things; the chart uses the same paths.
pub const STORE_DIR: &str = "/data/store";
pub const CONFIG_FILE: &str = "/etc/cybs3/server.toml";
pub const TLS_DIR: &str = "/etc/cybs3/tls";
pub const LDAP_CA_DIR: &str = "/etc/cybs3/ldap-ca";

/// The environment variable holding remote tier `index`'s secret key in the container.
pub fn tier_secret_env(index: usize) -> String {
    format!("CYBS3_TIER_{index}_SECRET_KEY")
}

/// The drive directories of a set of volumes mounted at `base/d0`, `base/d1`, …: a
/// directory inside each, since a fresh volume may hold lost+found and a new drive (or a
/// pool's drive) must start empty.
pub fn drive_dirs(base: &str, count: u32) -> Vec<String> {
    (0..count).map(|i| format!("{base}/d{i}/cybs3")).collect()
}

/// A TOML basic string. JSON's string escapes are a subset of TOML's, so serde_json's
/// encoding is a valid TOML string.
fn toml_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The server's config file for this spec.
pub fn server_toml(spec: &Cybs3Spec) -> String {
    let mut out = String::from("# Written by cybs3-operator; keys as in packaging/server.toml.\n");
    let mut key = |k: &str, v: String| writeln!(out, "{k} = {v}").expect("writing to a String");
    if spec.tls.is_some() {
        key("tls-cert", toml_str(&format!("{TLS_DIR}/tls.crt")));
        key("tls-key", toml_str(&format!("{TLS_DIR}/tls.key")));
    }
    if let Some(l) = &spec.ldap {
        key("ldap-url", toml_str(&l.url));
        let optional = [
            ("ldap-user-dn", &l.user_dn),
            ("ldap-bind-dn", &l.bind_dn),
            ("ldap-user-base", &l.user_base),
            ("ldap-user-filter", &l.user_filter),
            ("ldap-group-base", &l.group_base),
            ("ldap-group-filter", &l.group_filter),
        ];
        for (k, v) in optional {
            if let Some(v) = v {
                key(k, toml_str(v));
            }
        }
        if !l.group_policies.is_empty() {
            let list: Vec<String> = l.group_policies.iter().map(|p| toml_str(p)).collect();
            key("ldap-group-policy", format!("[{}]", list.join(", ")));
        }
        if l.starttls {
            key("ldap-starttls", "true".into());
        }
        if l.ca_secret.is_some() {
            key("ldap-ca-file", toml_str(&format!("{LDAP_CA_DIR}/ca.crt")));
        }
        if l.allow_insecure_login {
            key("allow-insecure-login", "true".into());
        }
    }
    out
}

/// A word for `sh`, single-quoted.
fn sh(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The post-start script, or None when there are no pools or tiers. It waits for the
/// server's admin socket, then adds what `admin pool list` / `admin tier list` do not show
/// yet, so running it at every start is harmless. A failure fails the hook: Kubernetes
/// then restarts the container and records FailedPostStartHook with the output.
pub fn post_start_script(spec: &Cybs3Spec) -> Option<String> {
    if spec.pools.is_empty() && spec.tiers.is_empty() {
        return None;
    }
    let data = format!("--data {STORE_DIR}");
    let mut s = String::from("set -e\n");
    // Up to two minutes: the hook runs beside the server's start, which opens the store first.
    let _ = writeln!(
        s,
        "i=0; until cybs3 admin pool list {data} --json >/tmp/pools.json 2>/dev/null; do \
         i=$((i+1)); [ $i -lt 120 ] || exit 1; sleep 1; done"
    );
    for pool in &spec.pools {
        let drives = drive_dirs(&format!("/pools/{}", pool.name), pool.drives.count).join(",");
        let ec = pool
            .ec
            .as_ref()
            .map(|e| format!(" --ec {}", sh(e)))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "grep -q {} /tmp/pools.json || cybs3 admin pool add {} {data} --drives {}{ec}",
            sh(&format!("\"name\":\"{}\"", pool.name)),
            sh(&pool.name),
            sh(&drives),
        );
    }
    if !spec.tiers.is_empty() {
        let _ = writeln!(s, "cybs3 admin tier list {data} --json >/tmp/tiers.json");
    }
    let mut remote_index = 0;
    for tier in &spec.tiers {
        let _ = write!(
            s,
            "grep -q {} /tmp/tiers.json || ",
            sh(&format!("\"class\":\"{}\"", tier.class))
        );
        s.push_str(&tier_command(tier, &data, &mut remote_index));
        s.push('\n');
    }
    Some(s)
}

/// `cybs3 admin tier add` for one tier; a remote one takes its secret from the
/// environment (CYBS3_TIER_SECRET_KEY), never from the command line.
fn tier_command(tier: &Tier, data: &str, remote_index: &mut usize) -> String {
    let archive = if tier.archive { " --archive" } else { "" };
    match (&tier.pool, &tier.remote) {
        (Some(pool), _) => format!(
            "cybs3 admin tier add {} {data} --pool {}{archive}",
            sh(&tier.class),
            sh(pool)
        ),
        (None, Some(r)) => {
            let env = tier_secret_env(*remote_index);
            *remote_index += 1;
            let mut c = format!(
                "CYBS3_TIER_SECRET_KEY=\"${env}\" cybs3 admin tier add {} {data} --endpoint {} --bucket {} --access-key {}",
                sh(&tier.class),
                sh(&r.endpoint),
                sh(&r.bucket),
                sh(&r.access_key),
            );
            if let Some(p) = &r.prefix {
                let _ = write!(c, " --prefix {}", sh(p));
            }
            if let Some(region) = &r.region {
                let _ = write!(c, " --region {}", sh(region));
            }
            c + archive
        }
        // validate() refuses a tier with neither; nothing to run for it.
        (None, None) => "true".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Cybs3Spec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn server_toml_holds_tls_and_ldap() {
        let s = spec(serde_json::json!({
            "drives": {"count": 1, "size": "1Gi"},
            "tls": {"secretName": "t"},
            "ldap": {"url": "ldaps://dc", "userDn": "uid={user},dc=\"x\"",
                     "groupPolicies": ["staff=readwrite", "a=b"], "caSecret": "ca"},
        }));
        let toml = server_toml(&s);
        assert!(
            toml.contains("tls-cert = \"/etc/cybs3/tls/tls.crt\"\n"),
            "{toml}"
        );
        assert!(
            toml.contains("ldap-user-dn = \"uid={user},dc=\\\"x\\\"\"\n"),
            "{toml}"
        );
        assert!(
            toml.contains("ldap-group-policy = [\"staff=readwrite\", \"a=b\"]\n"),
            "{toml}"
        );
        assert!(
            toml.contains("ldap-ca-file = \"/etc/cybs3/ldap-ca/ca.crt\"\n"),
            "{toml}"
        );
        assert!(!toml.contains("starttls"), "{toml}");
    }

    #[test]
    fn no_pools_no_hook() {
        assert_eq!(
            post_start_script(&spec(
                serde_json::json!({"drives": {"count": 1, "size": "1Gi"}})
            )),
            None
        );
    }

    #[test]
    fn hook_adds_missing_pools_and_tiers() {
        let s = spec(serde_json::json!({
            "drives": {"count": 1, "size": "1Gi"},
            "pools": [{"name": "big", "drives": {"count": 2, "size": "1Ti"}, "ec": "1+1"}],
            "tiers": [
                {"class": "GLACIER", "pool": "big", "archive": true},
                {"class": "COLD", "remote": {"endpoint": "https://s3.example.org", "bucket": "it's",
                 "accessKey": "AK", "secretKeyRef": {"name": "s", "key": "k"}}},
            ],
        }));
        let script = post_start_script(&s).unwrap();
        assert!(script.contains(
            "grep -q '\"name\":\"big\"' /tmp/pools.json || cybs3 admin pool add 'big' --data /data/store \
             --drives '/pools/big/d0/cybs3,/pools/big/d1/cybs3' --ec '1+1'\n"
        ), "{script}");
        assert!(
            script.contains(
                "cybs3 admin tier add 'GLACIER' --data /data/store --pool 'big' --archive\n"
            ),
            "{script}"
        );
        assert!(script.contains(
            "CYBS3_TIER_SECRET_KEY=\"$CYBS3_TIER_0_SECRET_KEY\" cybs3 admin tier add 'COLD' --data /data/store \
             --endpoint 'https://s3.example.org' --bucket 'it'\\''s' --access-key 'AK'\n"
        ), "{script}");
    }
}
