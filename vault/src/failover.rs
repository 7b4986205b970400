//! Several endpoints for one vault (the sites of a group): every request goes to the
//! healthy endpoint with the lowest latency, and an attempt that fails on a connection
//! error, a timeout or a 5xx marks its endpoint down for a while, so the SDK's retry of
//! that request, and the requests after it, go to another.
//!
//! It is an SDK interceptor: the endpoint is chosen for each attempt before the request
//! is signed (the host is part of the signature), and the attempt's outcome is read
//! after it. The sites share their users and keys (site replication), so one key signs
//! for all of them.

use aws_sdk_s3::config::interceptors::{
    BeforeTransmitInterceptorContextMut, FinalizerInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an endpoint that failed is left alone first; doubled on each failure in a
/// row, up to [`MAX_DOWN`].
const FIRST_DOWN: Duration = Duration::from_secs(2);
const MAX_DOWN: Duration = Duration::from_secs(60);
/// The weight of the newest attempt in an endpoint's latency average.
const LATENCY_WEIGHT: f64 = 0.2;
/// The most uploads in progress remembered at once.
const MAX_UPLOADS: usize = 10_000;

/// What is known of one endpoint.
#[derive(Clone, Debug)]
struct Health {
    /// `scheme://host:port`, as the requests' URIs begin.
    base: String,
    /// Average attempt time (s), once one was measured.
    latency: Option<f64>,
    /// Failures in a row.
    failures: u32,
    down_until: Option<Instant>,
}

/// What a vault's clients know of its endpoints.
#[derive(Debug)]
struct State {
    health: Vec<Health>,
    /// The endpoint in use: it stays until it fails or another is twice as fast, so
    /// requests do not flap between sites of similar latency.
    current: usize,
    /// Multipart uploads in progress, by object path: an upload lives on the site it
    /// was started at, so its parts and completion go there.
    uploads: HashMap<String, usize>,
}

/// The endpoints of one vault, shared by its clients.
#[derive(Clone, Debug)]
pub struct Endpoints(Arc<Mutex<State>>);

/// What one endpoint looks like now, for `cybs3 test`.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointState {
    pub endpoint: String,
    pub up: bool,
    pub latency_secs: Option<f64>,
}

impl Endpoints {
    pub fn new(all: &[String]) -> Endpoints {
        let health = all
            .iter()
            .map(|e| Health {
                base: e.trim_end_matches('/').to_string(),
                latency: None,
                failures: 0,
                down_until: None,
            })
            .collect();
        Endpoints(Arc::new(Mutex::new(State {
            health,
            current: 0,
            uploads: HashMap::new(),
        })))
    }

    /// The endpoint for the next attempt: the one in use while it is up and no other
    /// is twice as fast, else the fastest of those up, else the one back soonest.
    fn choose(&self) -> usize {
        let mut st = self.0.lock().expect("endpoint health");
        let now = Instant::now();
        let up = |h: &Health| h.down_until.is_none_or(|t| t <= now);
        let latency = |h: &Health| h.latency.unwrap_or(f64::MAX);
        let best = (st.health.iter().enumerate())
            .filter(|(_, h)| up(h))
            .min_by(|(_, a), (_, b)| latency(a).total_cmp(&latency(b)))
            .map(|(i, _)| i);
        let current = &st.health[st.current];
        let chosen = match best {
            Some(b) if !up(current) || latency(&st.health[b]) * 2.0 < latency(current) => b,
            Some(_) => st.current,
            None => (st.health.iter().enumerate())
                .min_by_key(|(_, h)| h.down_until)
                .map_or(0, |(i, _)| i),
        };
        st.current = chosen;
        chosen
    }

    /// The endpoint for an attempt at `path`: an upload's parts and completion go where
    /// it was started (`upload`: its query names one), a new upload is remembered.
    fn choose_for(&self, path: &str, query: &str) -> usize {
        let upload = query.split('&').any(|p| p.starts_with("uploadId="));
        if upload {
            if let Some(&i) = self.0.lock().expect("endpoint health").uploads.get(path) {
                return i;
            }
        }
        let i = self.choose();
        if query.split('&').any(|p| p == "uploads" || p == "uploads=") {
            let mut st = self.0.lock().expect("endpoint health");
            // Uploads abandoned without a completion must not pile up.
            if st.uploads.len() >= MAX_UPLOADS {
                st.uploads.clear();
            }
            st.uploads.insert(path.to_string(), i);
        }
        i
    }

    fn base(&self, i: usize) -> String {
        self.0.lock().expect("endpoint health").health[i]
            .base
            .clone()
    }

    fn record(&self, i: usize, outcome: Result<Duration, ()>) {
        let mut st = self.0.lock().expect("endpoint health");
        let h = &mut st.health[i];
        match outcome {
            Ok(took) => {
                let t = took.as_secs_f64();
                h.latency = Some(match h.latency {
                    Some(l) => l + LATENCY_WEIGHT * (t - l),
                    None => t,
                });
                h.failures = 0;
                h.down_until = None;
            }
            Err(()) => {
                let down = (FIRST_DOWN * 2u32.saturating_pow(h.failures)).min(MAX_DOWN);
                h.failures = h.failures.saturating_add(1);
                h.down_until = Some(Instant::now() + down);
                tracing::warn!(
                    endpoint = h.base,
                    "endpoint failed: the next requests go to another for {down:?}"
                );
            }
        }
    }

    /// Each endpoint as the client sees it now.
    pub fn states(&self) -> Vec<EndpointState> {
        let now = Instant::now();
        let st = self.0.lock().expect("endpoint health");
        (st.health.iter())
            .map(|h| EndpointState {
                endpoint: h.base.clone(),
                up: h.down_until.is_none_or(|t| t <= now),
                latency_secs: h.latency,
            })
            .collect()
    }
}

/// The endpoint an attempt went to, and when.
#[derive(Clone, Debug)]
struct Attempt {
    index: usize,
    started: Instant,
}

impl Storable for Attempt {
    type Storer = StoreReplace<Self>;
}

/// The interceptor that spreads a client's requests over [`Endpoints`].
#[derive(Debug)]
pub(crate) struct Failover(pub Endpoints);

impl Intercept for Failover {
    fn name(&self) -> &'static str {
        "cybs3-failover"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request_mut();
        let uri = req.uri().to_string();
        // Path-style URIs: scheme://authority/bucket/key?query; the first endpoint's
        // base is swapped for the chosen one's.
        let rest = uri
            .find("://")
            .and_then(|s| uri[s + 3..].find('/').map(|p| &uri[s + 3 + p..]))
            .unwrap_or("/");
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let index = self.0.choose_for(path, query);
        req.set_uri(format!("{}{rest}", self.0.base(index)))?;
        cfg.interceptor_state().store_put(Attempt {
            index,
            started: Instant::now(),
        });
        Ok(())
    }

    fn read_after_attempt(
        &self,
        ctx: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(attempt) = cfg.load::<Attempt>().cloned() else {
            return Ok(());
        };
        let failed = match ctx.response() {
            // No answer: refused, reset, timed out.
            None => true,
            Some(r) => r.status().is_server_error(),
        };
        let outcome = match failed {
            true => Err(()),
            false => Ok(attempt.started.elapsed()),
        };
        self.0.record(attempt.index, outcome);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_endpoint_is_left_alone_and_the_fastest_is_chosen() {
        let e = Endpoints::new(&["http://a:1".into(), "http://b:2/".into()]);
        assert_eq!(e.base(1), "http://b:2");
        assert_eq!(e.choose(), 0, "the first until one is measured");
        e.record(0, Ok(Duration::from_millis(50)));
        e.record(1, Ok(Duration::from_millis(40)));
        assert_eq!(e.choose(), 0, "not twice as fast: no switch");
        for _ in 0..10 {
            e.record(1, Ok(Duration::from_millis(1)));
        }
        assert_eq!(e.choose(), 1, "twice as fast");
        e.record(1, Err(()));
        assert_eq!(e.choose(), 0, "the other while it is down");
        assert!(!e.states()[1].up);
        e.record(0, Err(()));
        // Both down: the one back soonest (b failed first).
        assert_eq!(e.choose(), 1);
    }

    #[test]
    fn an_uploads_parts_go_where_it_started() {
        let e = Endpoints::new(&["http://a:1".into(), "http://b:2".into()]);
        e.record(0, Ok(Duration::from_millis(5)));
        assert_eq!(e.choose_for("/b/k", "uploads"), 0);
        e.record(0, Err(()));
        assert_eq!(e.choose_for("/b/k", "partNumber=1&uploadId=u"), 0);
        assert_eq!(e.choose_for("/b/other", "x-id=PutObject"), 1);
    }
}
