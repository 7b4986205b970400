//! The `cybs3-operator` binary: `crd` prints the CustomResourceDefinition, `render` the
//! objects a resource becomes, and `run` the controller.

use clap::{Parser, Subcommand};
use cybs3_operator::crd::{crd_yaml, Cybs3};
use cybs3_operator::desired::desired;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "Kubernetes operator for cybs3")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the Cybs3 CustomResourceDefinition (YAML), generated from the Rust types
    Crd,
    /// Print the objects the operator would apply for a Cybs3 resource (YAML documents)
    Render {
        /// A Cybs3 resource (YAML); without a namespace it is taken as "default"
        #[arg(long)]
        file: PathBuf,
    },
    /// Run the controller against the cluster of the current kubeconfig or service account
    Run,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Crd => match crd_yaml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!("cannot write YAML: {e}")),
        },
        Cmd::Render { file } => render(&file),
        Cmd::Run => run(),
    }
}

/// YAML documents, as `kubectl apply -f` takes them.
fn print_yaml(docs: &[serde_json::Value]) -> ExitCode {
    let mut out = Vec::new();
    for doc in docs {
        match serde_yaml::to_string(doc) {
            Ok(text) => out.push(text),
            Err(e) => return fail(&format!("cannot write YAML: {e}")),
        }
    }
    print!("{}", out.join("---\n"));
    ExitCode::SUCCESS
}

fn render(file: &PathBuf) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return fail(&format!("cannot read {}: {e}", file.display())),
    };
    let mut cr: Cybs3 = match serde_yaml::from_str(&text) {
        Ok(cr) => cr,
        Err(e) => return fail(&format!("{} is not a Cybs3 resource: {e}", file.display())),
    };
    cr.metadata
        .namespace
        .get_or_insert_with(|| "default".into());
    // A resource read from a file has no uid; the API server gives one. A stand-in lets the
    // owner references render as they would be applied.
    cr.metadata
        .uid
        .get_or_insert_with(|| "00000000-0000-0000-0000-000000000000".into());
    let objects = match desired(&cr) {
        Ok(d) => d,
        Err(e) => return fail(&format!("invalid spec: {e}")),
    };
    match objects.to_values() {
        Ok(values) => print_yaml(&values),
        Err(e) => fail(&format!("cannot encode the objects: {e}")),
    }
}

fn run() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(async {
        match kube::Client::try_default().await {
            Ok(client) => {
                cybs3_operator::reconcile::run(client).await;
                ExitCode::SUCCESS
            }
            Err(e) => fail(&format!(
                "cannot reach the cluster (kubeconfig or service account): {e}"
            )),
        }
    })
}

/// One line on stderr and exit status 1, as the cybs3 CLI does.
fn fail(message: &str) -> ExitCode {
    eprintln!("cybs3-operator: {message}");
    ExitCode::FAILURE
}
