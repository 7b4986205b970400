//! Virtual-hosted-style addressing: which `Host` headers name a bucket.
//!
//! s3s' own `MultiDomain` compares the Host header with each domain exactly,
//! port included, and takes any other host name for a CNAME bucket, so a
//! path-style request to `localhost:9000` would become a request to a bucket
//! called "localhost:9000". This parser ignores the port, recognizes only
//! `<bucket>.<domain>` for the configured domains, and leaves every other host
//! (localhost, IP addresses, unknown names) path-style.

use s3s::host::{S3Host, SingleDomain, VirtualHost};
use s3s::S3Result;
use std::borrow::Cow;

/// The base domains served virtual-hosted-style, lowercase and without port.
#[derive(Clone, Debug, Default)]
pub(crate) struct Domains(Vec<String>);

impl Domains {
    /// Check and normalize the `--domain` values (`s3.example.com`, optionally with a port).
    pub(crate) fn new(list: &[String]) -> anyhow::Result<Domains> {
        let mut out: Vec<String> = Vec::new();
        for given in list {
            let d = given.trim().trim_end_matches('.').to_ascii_lowercase();
            if SingleDomain::new(&d).is_err() {
                anyhow::bail!(
                    "invalid --domain {given:?}: expected a host name like s3.example.com"
                );
            }
            let d = strip_port(&d).to_string();
            if !out.contains(&d) {
                out.push(d);
            }
        }
        // Longest first, so that with both `example.com` and `s3.example.com` the
        // host `b.s3.example.com` is bucket "b" of the more specific domain.
        out.sort_by_key(|d| std::cmp::Reverse(d.len()));
        Ok(Domains(out))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bucket a Host header names, or `None` for a path-style request.
    pub(crate) fn bucket_of(&self, host: &str) -> Option<String> {
        let host = strip_port(host).trim_end_matches('.').to_ascii_lowercase();
        self.0.iter().find_map(|d| {
            let bucket = host.strip_suffix(d.as_str())?.strip_suffix('.')?;
            (!bucket.is_empty()).then(|| bucket.to_string())
        })
    }

    /// Bucket and key of a request: from the Host header when it names a bucket,
    /// otherwise from the first path segment. `path` is percent-decoded.
    pub(crate) fn locate(
        &self,
        host: Option<&str>,
        path: &str,
    ) -> (Option<String>, Option<String>) {
        let path = path.strip_prefix('/').unwrap_or(path);
        if let Some(bucket) = host.and_then(|h| self.bucket_of(h)) {
            return (Some(bucket), (!path.is_empty()).then(|| path.to_string()));
        }
        let (bucket, key) = match path.split_once('/') {
            Some((b, k)) => (b, Some(k)),
            None => (path, None),
        };
        let key = key.filter(|k| !k.is_empty()).map(str::to_string);
        ((!bucket.is_empty()).then(|| bucket.to_string()), key)
    }
}

impl S3Host for Domains {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        Ok(match self.bucket_of(host) {
            Some(bucket) => VirtualHost::new(Cow::Borrowed(host)).with_bucket(bucket),
            None => VirtualHost::new(Cow::Borrowed(host)),
        })
    }
}

/// `name:port` → `name`; IPv6 literals (`[::1]:9000`) keep their brackets.
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!name.contains(':') || name.ends_with(']')) =>
        {
            name
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains(list: &[&str]) -> Domains {
        Domains::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn buckets_come_from_subdomains_whatever_the_port() {
        let d = domains(&["s3.example.com", "S3.Local:9000"]);
        assert_eq!(d.bucket_of("b1.s3.example.com").as_deref(), Some("b1"));
        assert_eq!(d.bucket_of("b1.s3.example.com:9000").as_deref(), Some("b1"));
        assert_eq!(
            d.bucket_of("my.dotted.bkt.s3.local:1234").as_deref(),
            Some("my.dotted.bkt")
        );
        assert_eq!(d.bucket_of("B1.S3.EXAMPLE.COM").as_deref(), Some("b1"));
        for path_style in [
            "s3.example.com",
            "s3.example.com:9000",
            "localhost:9000",
            "localhost",
            "127.0.0.1:9000",
            "[::1]:9000",
            "other.org",
            "xs3.example.com",
            ".s3.example.com",
        ] {
            assert_eq!(d.bucket_of(path_style), None, "{path_style}");
        }
    }

    #[test]
    fn the_most_specific_domain_wins() {
        let d = domains(&["example.com", "s3.example.com"]);
        assert_eq!(d.bucket_of("b.s3.example.com").as_deref(), Some("b"));
        assert_eq!(d.bucket_of("b.example.com").as_deref(), Some("b"));
    }

    #[test]
    fn no_domains_means_path_style_only() {
        let d = domains(&[]);
        assert!(d.is_empty());
        assert_eq!(d.bucket_of("b.s3.example.com"), None);
        assert_eq!(
            d.locate(Some("b.s3.example.com"), "/bkt/a/b"),
            (Some("bkt".into()), Some("a/b".into()))
        );
    }

    #[test]
    fn locate_reads_host_then_path() {
        let d = domains(&["s3.local"]);
        assert_eq!(
            d.locate(Some("vb.s3.local:9000"), "/dir/key"),
            (Some("vb".into()), Some("dir/key".into()))
        );
        assert_eq!(
            d.locate(Some("vb.s3.local"), "/"),
            (Some("vb".into()), None)
        );
        assert_eq!(
            d.locate(Some("localhost:9000"), "/bkt/"),
            (Some("bkt".into()), None)
        );
        assert_eq!(d.locate(Some("localhost:9000"), "/"), (None, None));
        assert_eq!(d.locate(None, "/bkt"), (Some("bkt".into()), None));
    }

    #[test]
    fn bad_domains_are_refused() {
        for bad in ["", "exa mple.com", "a..b", "s3.local:port", "s3.local:"] {
            assert!(Domains::new(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn s3s_gets_path_style_for_unknown_hosts() {
        let d = domains(&["s3.local"]);
        let vh = d.parse_host_header("localhost:9000").unwrap();
        assert_eq!(vh.bucket(), None);
        let vh = d.parse_host_header("bk.s3.local:9000").unwrap();
        assert_eq!(vh.bucket(), Some("bk"));
    }
}
