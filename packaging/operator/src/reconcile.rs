//! The thin layer between the pure functions and the API server: applies the desired
//! objects with server-side apply, writes the status subresource, and runs the controller
//! loop. Tests drive `reconcile` through a `kube::Client` over recorded responses.

use crate::crd::Cybs3;
use crate::desired::{desired, Desired};
use crate::error::Error;
use crate::status::{status, Failure};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

/// The field manager of every apply: the fields the operator owns.
pub const MANAGER: &str = "cybs3-operator";

/// What every reconcile needs.
pub struct Context {
    pub client: Client,
    /// The time for condition transitions (RFC 3339); fixed in tests.
    pub clock: fn() -> String,
}

/// The wall clock, for the real controller.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// Brings one resource's objects to its spec and reports how far its pods have come.
pub async fn reconcile(cr: Arc<Cybs3>, ctx: Arc<Context>) -> Result<Action, Error> {
    let now = (ctx.clock)();
    let ns = cr.namespace().unwrap_or_default();
    let crs: Api<Cybs3> = Api::namespaced(ctx.client.clone(), &ns);
    let objects = match desired(&cr) {
        Ok(d) => d,
        Err(e) => {
            // Nothing to retry: the next change to the resource brings a new reconcile.
            let f = Failure {
                reason: "InvalidSpec",
                message: e.to_string(),
            };
            write_status(&crs, &cr, &status(&cr, None, Some(&f), &now)).await?;
            return Ok(Action::await_change());
        }
    };
    match apply_all(&ctx.client, &ns, &objects).await {
        Ok(sts) => {
            let st = status(&cr, Some(&sts), None, &now);
            let settled = st
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            write_status(&crs, &cr, &st).await?;
            // While pods roll, look again soon; the owned StatefulSet's events also wake us.
            Ok(Action::requeue(Duration::from_secs(if settled {
                300
            } else {
                10
            })))
        }
        Err(e) => {
            let f = Failure {
                reason: "ApplyFailed",
                message: e.to_string(),
            };
            write_status(&crs, &cr, &status(&cr, None, Some(&f), &now)).await?;
            Err(e)
        }
    }
}

/// Applies every object in order; returns the StatefulSet as the API server has it now.
async fn apply_all(client: &Client, ns: &str, d: &Desired) -> Result<StatefulSet, Error> {
    apply(client, ns, &d.config).await?;
    apply(client, ns, &d.service).await?;
    apply(client, ns, &d.headless).await?;
    for claim in &d.pool_claims {
        apply::<PersistentVolumeClaim>(client, ns, claim).await?;
    }
    apply(client, ns, &d.statefulset).await
}

async fn apply<K>(client: &Client, ns: &str, obj: &K) -> Result<K, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), ns);
    let params = PatchParams::apply(MANAGER).force();
    Ok(api
        .patch(&obj.name_any(), &params, &Patch::Apply(obj))
        .await?)
}

async fn write_status(
    api: &Api<Cybs3>,
    cr: &Cybs3,
    st: &crate::crd::Cybs3Status,
) -> Result<(), Error> {
    let patch = serde_json::json!({ "status": st });
    api.patch_status(
        &cr.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// A failed reconcile is tried again after a pause (the status already says why).
pub fn error_policy(cr: Arc<Cybs3>, err: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(name = %cr.name_any(), error = %err, "reconcile failed");
    Action::requeue(Duration::from_secs(30))
}

/// Watches every `Cybs3` and the objects it owns until SIGTERM or Ctrl-C.
pub async fn run(client: Client) {
    let ctx = Arc::new(Context {
        client: client.clone(),
        clock: now,
    });
    Controller::new(
        Api::<Cybs3>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<StatefulSet>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(Api::<ConfigMap>::all(client), watcher::Config::default())
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|result| async move {
        match result {
            Ok((obj, _)) => tracing::info!(name = %obj.name, "reconciled"),
            Err(e) => tracing::warn!(error = %e, "controller"),
        }
    })
    .await;
}
