//! The `Cybs3` custom resource (group `cybs3.io`, version `v1alpha1`): one cybs3 store —
//! its drives and erasure layout, extra pools, storage classes (tiers), HTTPS and LDAP —
//! and the status the operator reports. `cybs3-operator crd` prints the CRD generated from
//! these types; `crd.yaml` beside Cargo.toml is that output, checked in.

use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The CRD as YAML: what `cybs3-operator crd` prints and crd.yaml holds.
pub fn crd_yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&Cybs3::crd())
}

/// The image the operator runs when the resource names none.
pub const DEFAULT_IMAGE: &str = "cybs3:0.1.0";

/// One cybs3 store, served by a StatefulSet of one pod (the engine is single-node; several
/// sites are separate resources joined by replication).
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "cybs3.io",
    version = "v1alpha1",
    kind = "Cybs3",
    namespaced,
    status = "Cybs3Status",
    shortname = "s3store",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".status.image"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct Cybs3Spec {
    /// Container image built from packaging/Containerfile. Changing it rolls the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The store's own drives (pool `main`), one PersistentVolumeClaim each. Fixed at the
    /// store's first start, like `--drives`.
    pub drives: Drives,
    /// Erasure layout data+parity, e.g. "4+2" (K+M = drives.count). Default: derived from
    /// the drive count, as `cybs3 server start` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec: Option<String>,
    /// Size of the store directory's volume (layout, root credentials, server key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_size: Option<String>,
    /// Extra pools: each gets its own volumes and is added to the running store
    /// (`cybs3 admin pool add`) when the pod starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<Pool>,
    /// Storage classes bound to a pool or to a bucket of another S3 system
    /// (`cybs3 admin tier add`), applied when the pod starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
    /// HTTPS from a kubernetes.io/tls Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    /// Directory logins (`cybs3 login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<Ldap>,
    /// A Secret with keys `root-user` and `root-password`, read at the store's first start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_credentials_secret: Option<String>,
    /// The Service's type (ClusterIP, NodePort or LoadBalancer). Default ClusterIP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<String>,
}

/// A set of drives of one size.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Drives {
    /// How many drives (volumes).
    #[schemars(range(min = 1, max = 64))]
    pub count: u32,
    /// Each volume's size, a Kubernetes quantity such as "100Gi".
    pub size: String,
    /// StorageClass of the volumes. Default: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// A pool of drives added to the running store.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pool {
    /// Pool name: lowercase letters, digits, '-' and '_' (not "main", the store's own drives).
    pub name: String,
    pub drives: Drives,
    /// The pool's erasure layout K+M. Default: derived from its drive count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ec: Option<String>,
}

/// An S3 storage class bound to a pool of this store, or to a bucket elsewhere.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    /// The class name: upper-case letters, digits or '_' (STANDARD_IA, GLACIER, …).
    pub class: String,
    /// A pool of this store (one of `pools`, or "main").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// A bucket of another S3 system, instead of a pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteTier>,
    /// Reads need RestoreObject first (as GLACIER).
    #[serde(default)]
    pub archive: bool,
}

/// Where a remote tier keeps its objects.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteTier {
    pub endpoint: String,
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub access_key: String,
    /// The secret key, from a Secret in the resource's namespace.
    pub secret_key_ref: SecretKeyRef,
}

/// One key of a Secret in the resource's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// HTTPS for the S3 port (and the health endpoints the probes use).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tls {
    /// A kubernetes.io/tls Secret (tls.crt, tls.key).
    pub secret_name: String,
}

/// LDAP settings, as the `--ldap-*` flags of `cybs3 server start`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ldap {
    /// ldap://… or ldaps://…
    pub url: String,
    /// Bind straight as this DN; {user} is the login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_dn: Option<String>,
    /// Or search for the user as this service account…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// …whose password is in this Secret…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_secret: Option<SecretKeyRef>,
    /// …under this base DN…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_base: Option<String>,
    /// …with this filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_filter: Option<String>,
    /// GROUP=POLICY pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_policies: Vec<String>,
    #[serde(default)]
    pub starttls: bool,
    /// A Secret whose key ca.crt is the directory's CA certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret: Option<String>,
    /// Take passwords over plain HTTP from other machines (prefer `tls`).
    #[serde(default)]
    pub allow_insecure_login: bool,
}

/// What the operator last saw of the store.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cybs3Status {
    /// The resource generation these conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The image the StatefulSet runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Pods ready and on the current revision.
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default)]
    pub updated_replicas: i32,
    /// Ready, Progressing and Degraded.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A status condition, shaped like metav1.Condition.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    pub reason: String,
    pub message: String,
    /// RFC 3339; changes only when `status` does.
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
