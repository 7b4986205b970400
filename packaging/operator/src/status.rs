//! The status reported on a `Cybs3`: conditions Ready, Progressing and Degraded, computed
//! from the StatefulSet the API server returned, or from why the objects could not be
//! made or applied. Pure, so that recorded API responses can drive it in tests.

use crate::crd::{Condition, Cybs3, Cybs3Status};
use k8s_openapi::api::apps::v1::StatefulSet;

/// Why a reconcile could not bring the objects to the spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// CamelCase, as condition reasons are: InvalidSpec or ApplyFailed.
    pub reason: &'static str,
    pub message: String,
}

/// How far the StatefulSet has come towards the spec's pods.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Rollout {
    replicas: i32,
    ready: i32,
    updated: i32,
    /// The StatefulSet controller has seen the latest StatefulSet spec and every pod runs
    /// its latest revision.
    settled: bool,
}

fn rollout(sts: &StatefulSet) -> Rollout {
    let replicas = sts.spec.replicas.unwrap_or(1);
    let Some(st) = &sts.status else {
        return Rollout {
            replicas,
            ..Default::default()
        };
    };
    let updated = st.updated_replicas.unwrap_or(0);
    let seen = st.observed_generation >= sts.metadata.generation;
    let same_revision = st.current_revision.is_some() && st.current_revision == st.update_revision;
    Rollout {
        replicas,
        ready: st.ready_replicas.unwrap_or(0),
        updated,
        settled: seen && same_revision && updated >= replicas,
    }
}

/// The status for `cr` given the StatefulSet as last seen (None when it could not be
/// applied or read) and the reconcile's failure, if any. `now` stamps conditions whose
/// status changed; the others keep their transition time.
pub fn status(
    cr: &Cybs3,
    observed: Option<&StatefulSet>,
    failure: Option<&Failure>,
    now: &str,
) -> Cybs3Status {
    let generation = cr.metadata.generation;
    let previous = cr.status.as_ref();
    let r = observed.map(rollout).unwrap_or_default();
    let serving = observed.is_some() && r.ready >= r.replicas && r.replicas > 0;
    let ready = serving && r.settled && failure.is_none();

    let (ready_status, ready_reason, ready_msg) = if let (None, Some(f)) = (observed, failure) {
        // The StatefulSet was not read: the pods may well still serve the previous spec.
        (
            "Unknown",
            f.reason,
            "the StatefulSet could not be read".to_string(),
        )
    } else if ready {
        (
            "True",
            "Serving",
            format!(
                "{}/{} pods ready on the current revision",
                r.ready, r.replicas
            ),
        )
    } else if serving {
        (
            "False",
            "NotUpdated",
            "pods serve, but not the spec's current revision".to_string(),
        )
    } else {
        (
            "False",
            "NotReady",
            format!("{}/{} pods ready", r.ready, r.replicas),
        )
    };
    let (prog_status, prog_reason, prog_msg) = match failure {
        Some(f) => (
            "False",
            f.reason,
            "stopped until the problem is fixed".to_string(),
        ),
        None if ready => (
            "False",
            "RolledOut",
            "every pod runs the current revision".to_string(),
        ),
        None if !r.settled => (
            "True",
            "RollingUpdate",
            format!("{}/{} pods updated, one at a time", r.updated, r.replicas),
        ),
        None => (
            "True",
            "WaitingForReady",
            format!("{}/{} pods ready", r.ready, r.replicas),
        ),
    };
    let (deg_status, deg_reason, deg_msg) = match failure {
        Some(f) => ("True", f.reason, f.message.clone()),
        None => ("False", "AsExpected", String::new()),
    };
    let condition = |type_: &str, status: &str, reason: &str, message: String| {
        let kept = previous
            .and_then(|p| p.conditions.iter().find(|c| c.type_ == type_))
            .filter(|c| c.status == status)
            .map(|c| c.last_transition_time.clone());
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time: kept.unwrap_or_else(|| now.into()),
            observed_generation: generation,
        }
    };
    Cybs3Status {
        observed_generation: generation,
        image: observed
            .and_then(|s| s.spec.template.spec.as_ref())
            .and_then(|p| p.containers.first())
            .and_then(|c| c.image.clone()),
        ready_replicas: r.ready,
        updated_replicas: r.updated,
        conditions: vec![
            condition("Ready", ready_status, ready_reason, ready_msg),
            condition("Progressing", prog_status, prog_reason, prog_msg),
            condition("Degraded", deg_status, deg_reason, deg_msg),
        ],
    }
}
