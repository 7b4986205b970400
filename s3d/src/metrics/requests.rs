//! Requests as they finish: a counter per API and status, a latency histogram and
//! bytes per API, and the requests in flight. The set of APIs is S3's, STS's and the
//! server's own (bounded: never a bucket or key). Adding to a counter takes a read
//! lock and atomics; a new API or status takes the write lock once.

use super::text::{Exposition, Kind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Latency buckets (seconds): from a cached small GET to a large transfer's head.
const BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Api {
    statuses: RwLock<Vec<(u16, AtomicU64)>>,
    /// Observations per bucket (not cumulative); the last is over every bound.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_ns: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// One finished request, as [`Requests::record`] counts it.
pub(crate) struct Finished<'a> {
    pub api: &'a str,
    pub status: u16,
    pub took: Duration,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Default)]
pub(crate) struct Requests {
    apis: RwLock<HashMap<Arc<str>, Api>>,
    in_flight: AtomicI64,
}

/// A request being served; dropping it ends it.
pub(crate) struct InFlight(Arc<super::Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.requests.in_flight.fetch_sub(1, Relaxed);
    }
}

impl Requests {
    pub fn start(shared: &Arc<super::Shared>) -> InFlight {
        shared.requests.in_flight.fetch_add(1, Relaxed);
        InFlight(shared.clone())
    }

    pub fn record(&self, f: &Finished) {
        if !self.apis.read().unwrap().contains_key(f.api) {
            self.apis.write().unwrap().entry(f.api.into()).or_default();
        }
        let apis = self.apis.read().unwrap();
        let api = &apis[f.api];
        let counted = api
            .statuses
            .read()
            .unwrap()
            .iter()
            .find(|(s, _)| *s == f.status)
            .map(|(_, n)| n.fetch_add(1, Relaxed))
            .is_some();
        if !counted {
            let mut statuses = api.statuses.write().unwrap();
            match statuses.iter().find(|(s, _)| *s == f.status) {
                Some((_, n)) => drop(n.fetch_add(1, Relaxed)),
                None => statuses.push((f.status, AtomicU64::new(1))),
            }
        }
        let secs = f.took.as_secs_f64();
        let slot = BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BOUNDS.len());
        api.buckets[slot].fetch_add(1, Relaxed);
        api.sum_ns.fetch_add(
            u64::try_from(f.took.as_nanos()).unwrap_or(u64::MAX),
            Relaxed,
        );
        api.bytes_in.fetch_add(f.bytes_in, Relaxed);
        api.bytes_out.fetch_add(f.bytes_out, Relaxed);
    }

    pub fn write(&self, e: &mut Exposition) {
        let apis = self.apis.read().unwrap();
        let mut names: Vec<&Arc<str>> = apis.keys().collect();
        names.sort();
        e.family(
            "cybs3_requests_total",
            Kind::Counter,
            "Requests answered, by API (S3 operation, STS action or server call) and HTTP status.",
        );
        for name in &names {
            let mut statuses: Vec<(u16, u64)> = apis[*name]
                .statuses
                .read()
                .unwrap()
                .iter()
                .map(|(s, n)| (*s, n.load(Relaxed)))
                .collect();
            statuses.sort_unstable();
            for (status, n) in statuses {
                let status = status.to_string();
                e.sample(
                    "cybs3_requests_total",
                    &[("api", name), ("status", &status)],
                    n as f64,
                );
            }
        }
        e.family(
            "cybs3_request_duration_seconds",
            Kind::Histogram,
            "Time from a request's arrival to its response head, by API.",
        );
        for name in &names {
            let api = &apis[*name];
            let counts: Vec<u64> = api.buckets.iter().map(|b| b.load(Relaxed)).collect();
            e.histogram(
                "cybs3_request_duration_seconds",
                &[("api", name)],
                (&BOUNDS, &counts[..BOUNDS.len()]),
                counts.iter().sum(),
                api.sum_ns.load(Relaxed) as f64 / 1e9,
            );
        }
        for (family, help, of) in [
            (
                "cybs3_received_bytes_total",
                "Request body bytes received, by API.",
                (|a: &Api| a.bytes_in.load(Relaxed)) as fn(&Api) -> u64,
            ),
            (
                "cybs3_sent_bytes_total",
                "Response body bytes sent, by API.",
                |a: &Api| a.bytes_out.load(Relaxed),
            ),
        ] {
            e.family(family, Kind::Counter, help);
            for name in &names {
                e.sample(family, &[("api", name)], of(&apis[*name]) as f64);
            }
        }
        e.single(
            "cybs3_requests_in_flight",
            Kind::Gauge,
            "Requests being served now.",
            self.in_flight.load(Relaxed) as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_api_and_status_with_latency_and_bytes() {
        let r = Requests::default();
        let f = |api, status, ms, bytes_out| Finished {
            api,
            status,
            took: Duration::from_millis(ms),
            bytes_in: 10,
            bytes_out,
        };
        r.record(&f("GetObject", 200, 3, 4096));
        r.record(&f("GetObject", 200, 300, 4096));
        r.record(&f("GetObject", 404, 1, 0));
        r.record(&f("PutObject", 200, 20, 0));
        let mut e = Exposition::default();
        r.write(&mut e);
        let text = e.finish();
        for line in [
            "cybs3_requests_total{api=\"GetObject\",status=\"200\"} 2",
            "cybs3_requests_total{api=\"GetObject\",status=\"404\"} 1",
            "cybs3_requests_total{api=\"PutObject\",status=\"200\"} 1",
            "cybs3_request_duration_seconds_bucket{api=\"GetObject\",le=\"0.001\"} 1",
            "cybs3_request_duration_seconds_bucket{api=\"GetObject\",le=\"0.005\"} 2",
            "cybs3_request_duration_seconds_bucket{api=\"GetObject\",le=\"+Inf\"} 3",
            "cybs3_request_duration_seconds_count{api=\"GetObject\"} 3",
            "cybs3_received_bytes_total{api=\"GetObject\"} 30",
            "cybs3_sent_bytes_total{api=\"GetObject\"} 8192",
            "cybs3_requests_in_flight 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
