//! The settings a running server takes without a restart (`cybs3 server config set`):
//! the proxies believed for `aws:SourceIp`, directory logins, the lifecycle scanner's
//! interval and open metrics. Whoever holds a clone changes them for every request
//! that starts afterwards; requests read them through a lock held for a copy.

use crate::identity::ldap::LdapConfig;
use crate::metrics::Metrics;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Live(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    trusted_proxies: RwLock<Arc<Vec<IpAddr>>>,
    ldap: RwLock<Option<Arc<LdapConfig>>>,
    lifecycle_interval: RwLock<Option<Duration>>,
    metrics: Metrics,
    /// Wakes whoever waits on a setting that changed.
    changed: tokio::sync::Notify,
}

impl Live {
    pub fn new(
        trusted_proxies: Vec<IpAddr>,
        ldap: Option<LdapConfig>,
        lifecycle_interval: Option<Duration>,
        metrics_public: bool,
    ) -> Live {
        Live(Arc::new(Inner {
            trusted_proxies: RwLock::new(Arc::new(trusted_proxies)),
            ldap: RwLock::new(ldap.map(Arc::new)),
            lifecycle_interval: RwLock::new(lifecycle_interval),
            metrics: Metrics::new(metrics_public),
            changed: tokio::sync::Notify::new(),
        }))
    }

    pub fn trusted_proxies(&self) -> Arc<Vec<IpAddr>> {
        self.0.trusted_proxies.read().unwrap().clone()
    }

    pub fn set_trusted_proxies(&self, proxies: Vec<IpAddr>) {
        *self.0.trusted_proxies.write().unwrap() = Arc::new(proxies);
    }

    pub fn ldap(&self) -> Option<Arc<LdapConfig>> {
        self.0.ldap.read().unwrap().clone()
    }

    pub fn set_ldap(&self, ldap: Option<LdapConfig>) {
        *self.0.ldap.write().unwrap() = ldap.map(Arc::new);
    }

    /// The time between lifecycle passes, when set apart from the day's length.
    pub fn lifecycle_interval(&self) -> Option<Duration> {
        *self.0.lifecycle_interval.read().unwrap()
    }

    pub fn set_lifecycle_interval(&self, every: Option<Duration>) {
        *self.0.lifecycle_interval.write().unwrap() = every;
        self.0.changed.notify_waiters();
    }

    /// Resolves at the next change of a setting that someone waits on.
    pub(crate) async fn changed(&self) {
        self.0.changed.notified().await;
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }
}

impl Default for Live {
    fn default() -> Live {
        Live::new(Vec::new(), None, None, false)
    }
}
