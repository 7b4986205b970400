//! `reconcile` against API server responses replayed through a `kube::Client` over a
//! tower-test mock: which requests it makes, in which order, with which bodies, and the
//! status it writes for a rolling, a rolled-out, a refused and an invalid resource.

use cybs3_operator::crd::Cybs3;
use cybs3_operator::reconcile::{reconcile, Context};
use http::{Request, Response};
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::Client;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tower_test::mock;

const NOW: &str = "2026-12-01T10:00:00Z";
const EARLIER: &str = "2026-11-30T09:13:02Z";

/// How the fake API server answers one request.
enum Reply {
    /// With the object it was sent, as an apply of an unchanged object does.
    Echo,
    /// With a fixture file and this status code.
    Fixture(&'static str, u16),
}

/// One expected request: method, path (without the query) and the answer.
struct Step(&'static str, &'static str, Reply);

/// A request as the server received it.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    body: Value,
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The example resource as the API server would hand it to the controller.
fn example(generation: i64) -> Cybs3 {
    let text = std::fs::read_to_string(format!(
        "{}/examples/cybs3.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut cr: Cybs3 = serde_yaml::from_str(&text).unwrap();
    cr.metadata.uid = Some("9d0e4c52-7b1a-4f3e-8a61-2c5d9e0f1a77".into());
    cr.metadata.generation = Some(generation);
    cr
}

/// Runs one reconcile of `cr` against a server that expects exactly `steps`.
async fn run(cr: Cybs3, steps: Vec<Step>) -> (Result<Action, String>, Vec<Seen>) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let answer_with = serde_json::to_vec(&cr).unwrap();
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for Step(method, path, reply) in steps {
            let (req, send) = handle.next_request().await.expect("a request");
            let uri = req.uri().clone();
            let got = Seen {
                method: req.method().to_string(),
                path: uri.path().to_string(),
                query: uri.query().unwrap_or("").to_string(),
                body: serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap())
                    .unwrap(),
            };
            assert_eq!(
                (got.method.as_str(), got.path.as_str()),
                (method, path),
                "request {}",
                seen.len()
            );
            let (code, body) = match reply {
                Reply::Echo if path.ends_with("/status") => (200, answer_with.clone()),
                Reply::Echo => (200, serde_json::to_vec(&got.body).unwrap()),
                Reply::Fixture(name, code) => (code, fixture(name)),
            };
            send.send_response(
                Response::builder()
                    .status(code)
                    .body(Body::from(body))
                    .unwrap(),
            );
            seen.push(got);
        }
        seen
    });
    let ctx = Arc::new(Context {
        client: Client::new(service, "default"),
        clock: || NOW.to_string(),
    });
    let result = tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(cr), ctx))
        .await
        .expect("reconcile finished")
        .map_err(|e| e.to_string());
    (result, server.await.unwrap())
}

/// The applies of the example's objects, then `statefulset` for the StatefulSet, then the status.
fn applies(statefulset: Reply) -> Vec<Step> {
    vec![
        Step(
            "PATCH",
            "/api/v1/namespaces/storage/configmaps/store-config",
            Reply::Echo,
        ),
        Step(
            "PATCH",
            "/api/v1/namespaces/storage/services/store",
            Reply::Echo,
        ),
        Step(
            "PATCH",
            "/api/v1/namespaces/storage/services/store-headless",
            Reply::Echo,
        ),
        Step(
            "PATCH",
            "/api/v1/namespaces/storage/persistentvolumeclaims/store-pool-cold-d0",
            Reply::Echo,
        ),
        Step(
            "PATCH",
            "/api/v1/namespaces/storage/persistentvolumeclaims/store-pool-cold-d1",
            Reply::Echo,
        ),
        Step(
            "PATCH",
            "/api/v1/namespaces/storage/persistentvolumeclaims/store-pool-cold-d2",
            Reply::Echo,
        ),
        Step(
            "PATCH",
            "/api/v1/namespaces/storage/persistentvolumeclaims/store-pool-cold-d3",
            Reply::Echo,
        ),
        Step(
            "PATCH",
            "/apis/apps/v1/namespaces/storage/statefulsets/store",
            statefulset,
        ),
        Step(
            "PATCH",
            "/apis/cybs3.io/v1alpha1/namespaces/storage/cybs3s/store/status",
            Reply::Echo,
        ),
    ]
}

/// The condition of this type in the status patch that was sent.
fn condition<'a>(status_patch: &'a Seen, type_: &str) -> &'a Value {
    status_patch.body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap()
}

fn summary(c: &Value) -> (&str, &str) {
    (c["status"].as_str().unwrap(), c["reason"].as_str().unwrap())
}

#[tokio::test]
async fn a_rolling_update_reports_progressing() {
    let (result, seen) = run(
        example(2),
        applies(Reply::Fixture("statefulset-rolling.json", 200)),
    )
    .await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(10))));
    // Every object goes by server-side apply, as this operator's field manager, forced.
    for s in &seen[..8] {
        assert!(
            s.query.contains("fieldManager=cybs3-operator") && s.query.contains("force=true"),
            "{}",
            s.query
        );
        assert_eq!(s.body["metadata"]["namespace"], "storage");
    }
    let sts = &seen[7].body;
    assert_eq!(sts["kind"], "StatefulSet");
    assert_eq!(sts["spec"]["updateStrategy"]["type"], "RollingUpdate");
    assert_eq!(sts["metadata"]["ownerReferences"][0]["kind"], "Cybs3");
    assert_eq!(sts["metadata"]["ownerReferences"][0]["controller"], true);
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example.org/cybs3:0.1.0"
    );
    // Pool claims carry no owner: the data outlives the resource.
    assert!(seen[3].body["metadata"].get("ownerReferences").is_none());

    let st = &seen[8];
    assert_eq!(st.query, "");
    assert_eq!(summary(condition(st, "Ready")), ("False", "NotUpdated"));
    assert_eq!(
        summary(condition(st, "Progressing")),
        ("True", "RollingUpdate")
    );
    assert_eq!(summary(condition(st, "Degraded")), ("False", "AsExpected"));
    assert_eq!(condition(st, "Progressing")["lastTransitionTime"], NOW);
    assert_eq!(st.body["status"]["observedGeneration"], 2);
    assert_eq!(st.body["status"]["updatedReplicas"], 0);
}

#[tokio::test]
async fn a_finished_rollout_reports_ready_and_keeps_transition_times() {
    let mut cr = example(2);
    // The status the previous reconcile wrote: already Ready since EARLIER.
    cr.status = Some(
        serde_json::from_value(serde_json::json!({
            "conditions": [{"type": "Ready", "status": "True", "reason": "Serving", "message": "",
                            "lastTransitionTime": EARLIER}]
        }))
        .unwrap(),
    );
    let (result, seen) = run(cr, applies(Reply::Fixture("statefulset-ready.json", 200))).await;
    assert_eq!(result, Ok(Action::requeue(Duration::from_secs(300))));
    let st = &seen[8];
    assert_eq!(summary(condition(st, "Ready")), ("True", "Serving"));
    assert_eq!(condition(st, "Ready")["lastTransitionTime"], EARLIER);
    assert_eq!(
        summary(condition(st, "Progressing")),
        ("False", "RolledOut")
    );
    assert_eq!(summary(condition(st, "Degraded")), ("False", "AsExpected"));
    assert_eq!(
        st.body["status"]["image"],
        "registry.example.org/cybs3:0.1.0"
    );
}

#[tokio::test]
async fn a_refused_change_reports_degraded_with_the_api_servers_reason() {
    // What a changed drive count does: volumeClaimTemplates cannot change in place.
    let (result, seen) = run(
        example(3),
        applies(Reply::Fixture("statefulset-forbidden.json", 422)),
    )
    .await;
    let err = result.unwrap_err();
    assert!(err.contains("Forbidden"), "{err}");
    let st = &seen[8];
    let degraded = condition(st, "Degraded");
    assert_eq!(summary(degraded), ("True", "ApplyFailed"));
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("updates to statefulset spec"),
        "{degraded}"
    );
    // The old pod may still serve: without the StatefulSet, readiness is unknown.
    assert_eq!(summary(condition(st, "Ready")), ("Unknown", "ApplyFailed"));
    assert_eq!(
        summary(condition(st, "Progressing")),
        ("False", "ApplyFailed")
    );
}

#[tokio::test]
async fn an_invalid_spec_applies_nothing() {
    let mut cr = example(4);
    cr.spec.ec = Some("4+4".into());
    let steps = vec![Step(
        "PATCH",
        "/apis/cybs3.io/v1alpha1/namespaces/storage/cybs3s/store/status",
        Reply::Echo,
    )];
    let (result, seen) = run(cr, steps).await;
    assert_eq!(result, Ok(Action::await_change()));
    let degraded = condition(&seen[0], "Degraded");
    assert_eq!(summary(degraded), ("True", "InvalidSpec"));
    assert_eq!(degraded["message"], "drives: ec 4+4 needs K+M = 6 drives");
}
