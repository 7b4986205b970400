//! The objects a `Cybs3` resource becomes, computed from its spec alone: the server.toml
//! ConfigMap, a Service and the StatefulSet's headless Service, one PersistentVolumeClaim
//! per pool drive, and the StatefulSet (one pod, one claim per drive of the main pool).
//! Pure: `cybs3-operator render` prints these, and the reconciler applies them.

use crate::config::{self, CONFIG_FILE, LDAP_CA_DIR, TLS_DIR};
use crate::crd::{Cybs3, Cybs3Spec, Drives, DEFAULT_IMAGE};
use crate::error::SpecError;
use crate::spec;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SecretKeySelector, SecretVolumeSource,
    SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;

/// The S3 port, where the health endpoints are too.
const PORT: i32 = 9000;
/// The image's user (packaging/Containerfile).
const UID: i64 = 10001;

/// Everything one resource becomes, in the order it is applied (what the StatefulSet
/// mounts exists before it).
#[derive(Debug, Clone)]
pub struct Desired {
    pub config: ConfigMap,
    pub service: Service,
    pub headless: Service,
    pub pool_claims: Vec<PersistentVolumeClaim>,
    pub statefulset: StatefulSet,
}

impl Desired {
    /// All objects as JSON, in apply order.
    pub fn to_values(&self) -> Result<Vec<serde_json::Value>, serde_json::Error> {
        let mut out = vec![
            serde_json::to_value(&self.config)?,
            serde_json::to_value(&self.service)?,
            serde_json::to_value(&self.headless)?,
        ];
        for c in &self.pool_claims {
            out.push(serde_json::to_value(c)?);
        }
        out.push(serde_json::to_value(&self.statefulset)?);
        Ok(out)
    }
}

/// The StatefulSet's governing (headless) Service.
pub fn headless_name(cr: &Cybs3) -> String {
    format!("{}-headless", cr.name_any())
}

/// The claim of drive `index` of `pool`. Claim names are DNS subdomains: '_' is not allowed.
pub fn pool_claim(cr: &Cybs3, pool: &str, index: u32) -> String {
    format!("{}-pool-{}-d{index}", cr.name_any(), pool.replace('_', "-"))
}

/// The objects for `cr`, or why its spec cannot be served.
pub fn desired(cr: &Cybs3) -> Result<Desired, SpecError> {
    let spec = &cr.spec;
    spec::validate(spec)?;
    let ns = cr.namespace().ok_or(SpecError::NoNamespace)?;
    let name = cr.name_any();
    let labels = selector_labels(&name);
    // Controller owner references: the objects go when the resource goes, and the
    // controller hears of their changes. Claims get none: data outlives the resource, as
    // with a StatefulSet's own claims.
    let owner = cr.controller_owner_ref(&()).map(|o| vec![o]);
    let meta = |name: String| ObjectMeta {
        name: Some(name),
        namespace: Some(ns.clone()),
        labels: Some(labels.clone()),
        owner_references: owner.clone(),
        ..Default::default()
    };
    let toml = config::server_toml(spec);
    let hook = config::post_start_script(spec);

    let config = ConfigMap {
        metadata: meta(format!("{name}-config")),
        data: Some(BTreeMap::from([("server.toml".to_string(), toml.clone())])),
        ..Default::default()
    };
    let port = || ServicePort {
        name: Some("s3".into()),
        port: PORT,
        target_port: Some(IntOrString::String("s3".into())),
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let service = Service {
        metadata: meta(name.clone()),
        spec: Some(ServiceSpec {
            type_: Some(
                spec.service_type
                    .clone()
                    .unwrap_or_else(|| "ClusterIP".into()),
            ),
            selector: Some(labels.clone()),
            ports: Some(vec![port()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let headless = Service {
        metadata: meta(headless_name(cr)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(labels.clone()),
            ports: Some(vec![port()]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pool_claims = spec
        .pools
        .iter()
        .flat_map(|p| (0..p.drives.count).map(move |i| (p, i)))
        .map(|(p, i)| PersistentVolumeClaim {
            metadata: ObjectMeta {
                owner_references: None,
                ..meta(pool_claim(cr, &p.name, i))
            },
            spec: Some(claim_spec(&p.drives)),
            ..Default::default()
        })
        .collect();

    // A changed config or hook must restart the server, which reads both only at start.
    let fingerprint = fnv1a(format!("{toml}\0{}", hook.as_deref().unwrap_or("")).as_bytes());
    let template = PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels.clone()),
            annotations: Some(BTreeMap::from([(
                "cybs3.io/config-hash".to_string(),
                format!("{fingerprint:016x}"),
            )])),
            ..Default::default()
        }),
        spec: Some(pod_spec(cr, spec, &name, hook)),
    };
    let mut claims = vec![PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            ..Default::default()
        },
        spec: Some(claim_spec(&Drives {
            count: 1,
            size: spec.data_size.clone().unwrap_or_else(|| "1Gi".into()),
            storage_class_name: spec.drives.storage_class_name.clone(),
        })),
        ..Default::default()
    }];
    claims.extend((0..spec.drives.count).map(|i| PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(format!("d{i}")),
            ..Default::default()
        },
        spec: Some(claim_spec(&spec.drives)),
        ..Default::default()
    }));
    let statefulset = StatefulSet {
        metadata: meta(name.clone()),
        spec: StatefulSetSpec {
            // The engine is single-node: one pod owns the store.
            replicas: Some(1),
            service_name: Some(headless_name(cr)),
            pod_management_policy: Some("OrderedReady".into()),
            // The StatefulSet controller replaces one pod at a time, highest ordinal
            // first, each only after the one before is Ready again.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: None,
            }),
            selector: LabelSelector {
                match_labels: Some(labels),
                ..Default::default()
            },
            template,
            volume_claim_templates: Some(claims),
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(Desired {
        config,
        service,
        headless,
        pool_claims,
        statefulset,
    })
}

fn selector_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "cybs3".to_string()),
        ("app.kubernetes.io/instance".to_string(), name.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "cybs3-operator".to_string(),
        ),
    ])
}

fn claim_spec(drives: &Drives) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".into()]),
        storage_class_name: drives.storage_class_name.clone(),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([(
                "storage".to_string(),
                Quantity(drives.size.clone()),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn secret_volume(name: &str, secret: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_spec(cr: &Cybs3, spec: &Cybs3Spec, name: &str, hook: Option<String>) -> PodSpec {
    let drives = config::drive_dirs("/drives", spec.drives.count).join(",");
    // Appended to the image's ENTRYPOINT `cybs3 server start --data /data/store --listen 0.0.0.0:9000`.
    let mut args = vec!["--drives".to_string(), drives];
    if let Some(ec) = &spec.ec {
        args.extend(["--ec".to_string(), ec.clone()]);
    }
    args.extend(["--config".to_string(), CONFIG_FILE.to_string()]);

    let mut env = vec![EnvVar {
        name: "RUST_LOG".into(),
        value: Some("info".into()),
        ..Default::default()
    }];
    if let Some(secret) = &spec.root_credentials_secret {
        env.push(secret_env("CYBS3_ROOT_USER", secret, "root-user"));
        env.push(secret_env("CYBS3_ROOT_PASSWORD", secret, "root-password"));
    }
    if let Some(s) = spec
        .ldap
        .as_ref()
        .and_then(|l| l.bind_password_secret.as_ref())
    {
        env.push(secret_env("CYBS3_LDAP_BIND_PASSWORD", &s.name, &s.key));
    }
    let remotes = spec.tiers.iter().filter_map(|t| t.remote.as_ref());
    for (i, r) in remotes.enumerate() {
        let s = &r.secret_key_ref;
        env.push(secret_env(&config::tier_secret_env(i), &s.name, &s.key));
    }

    let mut mounts = vec![mount("data", "/data", false)];
    mounts.extend(
        (0..spec.drives.count).map(|i| mount(&format!("d{i}"), &format!("/drives/d{i}"), false)),
    );
    let mut volumes = Vec::new();
    for p in &spec.pools {
        for i in 0..p.drives.count {
            let volume = format!("pool-{}-d{i}", p.name.replace('_', "-"));
            mounts.push(mount(&volume, &format!("/pools/{}/d{i}", p.name), false));
            volumes.push(Volume {
                name: volume,
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: pool_claim(cr, &p.name, i),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    // The root filesystem is read-only; scratch space for the hook and anything else.
    mounts.push(mount("tmp", "/tmp", false));
    volumes.push(Volume {
        name: "tmp".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    });
    mounts.push(VolumeMount {
        sub_path: Some("server.toml".into()),
        ..mount("config", CONFIG_FILE, true)
    });
    volumes.push(Volume {
        name: "config".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: format!("{name}-config"),
            ..Default::default()
        }),
        ..Default::default()
    });
    if let Some(tls) = &spec.tls {
        mounts.push(mount("tls", TLS_DIR, true));
        volumes.push(secret_volume("tls", &tls.secret_name));
    }
    if let Some(ca) = spec.ldap.as_ref().and_then(|l| l.ca_secret.as_ref()) {
        mounts.push(mount("ldap-ca", LDAP_CA_DIR, true));
        volumes.push(secret_volume("ldap-ca", ca));
    }

    let scheme = if spec.tls.is_some() { "HTTPS" } else { "HTTP" };
    let probe = |path: &str, period: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("s3".into()),
            scheme: Some(scheme.into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        ..Default::default()
    };
    let lifecycle = hook.map(|script| Lifecycle {
        post_start: Some(LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec!["sh".into(), "-c".into(), script]),
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let container = Container {
        name: "cybs3".into(),
        image: Some(spec.image.clone().unwrap_or_else(|| DEFAULT_IMAGE.into())),
        args: Some(args),
        ports: Some(vec![ContainerPort {
            name: Some("s3".into()),
            container_port: PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        env: Some(env),
        liveness_probe: Some(probe("/health/live", 10)),
        readiness_probe: Some(probe("/health/ready", 5)),
        lifecycle,
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    PodSpec {
        containers: vec![container],
        volumes: Some(volumes),
        // SIGTERM drains requests (`server stop` semantics) before the process exits.
        termination_grace_period_seconds: Some(60),
        // fsGroup makes the volumes writable to the image's user.
        security_context: Some(PodSecurityContext {
            run_as_user: Some(UID),
            run_as_group: Some(UID),
            run_as_non_root: Some(true),
            fs_group: Some(UID),
            fs_group_change_policy: Some("OnRootMismatch".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// FNV-1a, 64 bits: a fingerprint that stays the same across Rust releases (std's
/// hashers make no such promise), so an operator upgrade does not restart every store.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(json: serde_json::Value) -> Cybs3 {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "cybs3.io/v1alpha1", "kind": "Cybs3",
            "metadata": {"name": "s", "namespace": "ns", "uid": "u-1"},
            "spec": json,
        }))
        .unwrap()
    }

    #[test]
    fn one_claim_per_drive_and_the_flags_to_match() {
        let d = desired(&cr(
            serde_json::json!({"drives": {"count": 6, "size": "1Ti"}, "ec": "4+2"}),
        ))
        .unwrap();
        let sts = d.statefulset.spec;
        let names: Vec<_> = sts
            .volume_claim_templates
            .unwrap()
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect();
        assert_eq!(names, ["data", "d0", "d1", "d2", "d3", "d4", "d5"]);
        let pod = sts.template.spec.unwrap();
        let args = pod.containers[0].args.clone().unwrap();
        assert_eq!(args[..4], ["--drives", "/drives/d0/cybs3,/drives/d1/cybs3,/drives/d2/cybs3,/drives/d3/cybs3,/drives/d4/cybs3,/drives/d5/cybs3", "--ec", "4+2"]);
        assert_eq!(sts.replicas, Some(1));
        assert_eq!(
            d.statefulset.metadata.owner_references.unwrap()[0].uid,
            "u-1"
        );
    }

    #[test]
    fn pools_get_their_own_claims_and_a_hook() {
        let d = desired(&cr(serde_json::json!({
            "drives": {"count": 1, "size": "1Gi"},
            "pools": [{"name": "big_one", "drives": {"count": 2, "size": "1Ti"}}],
        })))
        .unwrap();
        let claims: Vec<_> = d
            .pool_claims
            .iter()
            .map(|c| c.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(claims, ["s-pool-big-one-d0", "s-pool-big-one-d1"]);
        assert!(
            d.pool_claims[0].metadata.owner_references.is_none(),
            "claims outlive the resource"
        );
        let pod = d.statefulset.spec.template.spec.unwrap();
        assert!(pod.containers[0].lifecycle.is_some());
        assert!(pod.volumes.unwrap().iter().any(|v| v
            .persistent_volume_claim
            .as_ref()
            .is_some_and(|p| p.claim_name == "s-pool-big-one-d1")));
    }

    #[test]
    fn tls_switches_probes_to_https_and_config_changes_roll_the_pod() {
        let plain = desired(&cr(
            serde_json::json!({"drives": {"count": 1, "size": "1Gi"}}),
        ))
        .unwrap();
        let tls = desired(&cr(
            serde_json::json!({"drives": {"count": 1, "size": "1Gi"}, "tls": {"secretName": "t"}}),
        ))
        .unwrap();
        let template = |d: &Desired| d.statefulset.spec.template.clone();
        let pod = template(&tls).spec.unwrap();
        let probe = pod.containers[0]
            .readiness_probe
            .clone()
            .unwrap()
            .http_get
            .unwrap();
        assert_eq!(
            (probe.path.as_deref(), probe.scheme.as_deref()),
            (Some("/health/ready"), Some("HTTPS"))
        );
        assert_ne!(
            template(&plain).metadata.unwrap().annotations,
            template(&tls).metadata.unwrap().annotations
        );
    }

    #[test]
    fn a_bad_spec_makes_no_objects() {
        assert!(matches!(
            desired(&cr(
                serde_json::json!({"drives": {"count": 4, "size": "1Gi"}, "ec": "4+2"})
            )),
            Err(SpecError::EcDriveMismatch { .. })
        ));
    }
}
