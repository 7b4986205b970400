//! Sites: cybs3 servers, each in a Linux network namespace of its own, whose links to each
//! other a test can cut and heal (for replication between sites under a partition).
//!
//! Needs root and `ip` (iproute2; `tests/run.sh` installs it). The topology, for one [`Sites`]:
//!
//! ```text
//!            hub namespace: bridge `hubbr`, ports p0 p1 …  (the "site links")
//!               |                   |
//!   site 0 ns: `site` 10.77.Y.1/24   site 1 ns: `site` 10.77.Y.2/24   …
//!              `client` 10.78.Y.1/30            `client` 10.78.Y.5/30
//!               |                                |
//!   root ns:   `cyYc0` 10.78.Y.2/30             `cyYc1` 10.78.Y.6/30   (the "client links")
//! ```
//!
//! Sites reach each other only across the hub's bridge: a site has no default route, and the
//! root namespace holds no address or route in 10.77.Y.0/24, so nothing between sites can
//! detour through the root namespace (whatever its `ip_forward` says). This test process, in
//! the root namespace, reaches each site's server over that site's client link, which
//! [`Sites::cut`] leaves alone: a cut site is still observable and controllable from here.
//!
//! IPv6 is off in the namespaces so that [`Sites::site_traffic_bytes`] counts the test's own
//! traffic (plus a little ARP), not router solicitations and multicast listener reports.

use crate::Server;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Prefix of the namespaces made here, `cybs3-PID-K-…`, so that those of a test process that
/// died without cleaning up can be told apart and deleted.
const NS_PREFIX: &str = "cybs3-";

/// Client links are /30s, four addresses a site, in one /24.
const MAX_SITES: usize = 64;

/// How many [`Sites`] this process has made, to name each one's namespaces apart.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// N cybs3 servers ("sites"), each in its own network namespace, joined by a bridge whose
/// ports can be cut and healed. Drop stops the servers and deletes every namespace and link.
pub struct Sites {
    /// Site i's server. Its `endpoint()` and `client()` use its client-link address, so they
    /// work from this process even while the site is cut off from its peers.
    pub servers: Vec<Server>,
    /// The hub namespace, holding the bridge.
    hub: String,
    /// Site i's namespace.
    namespaces: Vec<String>,
    /// Site i's end of its client link in the root namespace.
    root_links: Vec<String>,
    /// Y of 10.77.Y.0/24 and 10.78.Y.0/24, unused in the root namespace when chosen.
    net: u8,
}

impl Sites {
    /// Set up the network for `n` sites and their servers (one drive each, home in
    /// `dir/siteI`), not started: adjust `servers[i]` (args, env, log) then
    /// [`Sites::start_servers`].
    pub fn new(n: usize, dir: &Path) -> Sites {
        assert!((1..=MAX_SITES).contains(&n), "1 to {MAX_SITES} sites");
        reap_stale();
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{NS_PREFIX}{}-{k}", std::process::id());
        let net = free_net();
        // Built up step by step, so that a failing `ip` leaves Drop what to clean up.
        let mut sites = Sites {
            servers: Vec::new(),
            hub: format!("{tag}-hub"),
            namespaces: Vec::new(),
            root_links: Vec::new(),
            net,
        };
        let hub = sites.hub.clone();
        add_netns(&hub);
        ip(&format!("-n {hub} link add name hubbr type bridge"));
        ip(&format!("-n {hub} link set dev hubbr up"));
        for i in 0..n {
            let ns = format!("{tag}-s{i}");
            add_netns(&ns);
            sites.namespaces.push(ns.clone());
            ip(&format!("-n {ns} link set dev lo up"));

            // The site link: a veth from the hub's bridge into the site.
            let port = hub_port(i);
            ip(&format!(
                "-n {hub} link add name {port} type veth peer name site netns {ns}"
            ));
            ip(&format!("-n {hub} link set dev {port} master hubbr up"));
            let addr = sites.site_addr(i);
            ip(&format!("-n {ns} addr add {addr}/24 dev site"));
            ip(&format!("-n {ns} link set dev site up"));

            // The client link: a veth from the root namespace into the site.
            let root = format!("cy{net}c{i}");
            ip(&format!(
                "link add name {root} type veth peer name client netns {ns}"
            ));
            sites.root_links.push(root.clone());
            // Best effort: only keeps link-local chatter off the client link.
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{root}/disable_ipv6"), "1");
            ip(&format!("addr add 10.78.{net}.{}/30 dev {root}", 4 * i + 2));
            ip(&format!("link set dev {root} up"));
            let addr = sites.client_addr(i);
            ip(&format!("-n {ns} addr add {addr}/30 dev client"));
            ip(&format!("-n {ns} link set dev client up"));

            let mut srv = Server::new(&dir.join(format!("site{i}")), 1, None);
            srv.netns = Some(ns);
            // Every address of the namespace: the client link for this process, the site
            // link for the peers.
            srv.bind = "0.0.0.0".into();
            srv.host = sites.client_addr(i);
            sites.servers.push(srv);
        }
        for i in 0..n {
            sites.wait_link(i);
        }
        sites
    }

    /// [`Sites::new`], then start every server.
    pub fn start(n: usize, dir: &Path) -> Sites {
        let mut sites = Sites::new(n, dir);
        sites.start_servers();
        sites
    }

    /// Start every server (each waits until it answers over its client link).
    pub fn start_servers(&mut self) {
        for srv in &mut self.servers {
            srv.start();
        }
    }

    /// Site i's namespace, for `ip netns exec` or `ip -n`.
    pub fn netns(&self, i: usize) -> &str {
        &self.namespaces[i]
    }

    /// Site i's address on the site link, where its peers reach it.
    pub fn site_addr(&self, i: usize) -> String {
        format!("10.77.{}.{}", self.net, i + 1)
    }

    /// Site i's address on its client link, where this process reaches it.
    pub fn client_addr(&self, i: usize) -> String {
        format!("10.78.{}.{}", self.net, 4 * i + 1)
    }

    /// The URL site i's peers reach its server at, e.g. `http://10.77.Y.2:PORT` (a
    /// replication target's endpoint).
    pub fn site_url(&self, i: usize) -> String {
        format!("http://{}:{}", self.site_addr(i), self.servers[i].port)
    }

    /// Cut site i off from its peers: its bridge port goes down, so its end of the site link
    /// loses carrier and frames either way are dropped. The client link stays up.
    pub fn cut(&self, i: usize) {
        ip(&format!(
            "-n {} link set dev {} down",
            self.hub,
            hub_port(i)
        ));
    }

    /// Reconnect site i to its peers and wait until its site link has carrier again.
    pub fn heal(&self, i: usize) {
        ip(&format!("-n {} link set dev {} up", self.hub, hub_port(i)));
        self.wait_link(i);
    }

    /// Bytes received plus sent on site i's bridge port since setup: everything that crossed
    /// its site link (replication, probes, and a little ARP), nothing of its client link.
    pub fn site_traffic_bytes(&self, i: usize) -> u64 {
        let out = ip(&format!(
            "-n {} -s -j link show dev {}",
            self.hub,
            hub_port(i)
        ));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j JSON");
        let stats = &v[0]["stats64"];
        let bytes = |dir: &str| stats[dir]["bytes"].as_u64().expect("stats64 bytes");
        bytes("rx") + bytes("tx")
    }

    /// Run `program args…` inside site i's namespace (as `ip netns exec`), to reach
    /// other sites from there.
    pub fn exec(&self, i: usize, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", self.netns(i), program])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run ip netns exec")
    }

    /// The status code of `GET /health/live` on site `to`'s server over the site link, sent
    /// from inside site `from` with curl; None if it does not answer within 3 s.
    pub fn probe(&self, from: usize, to: usize) -> Option<u16> {
        let url = format!("{}/health/live", self.site_url(to));
        let out = self.exec(
            from,
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-m",
                "3",
                "-w",
                "%{http_code}",
                &url,
            ],
        );
        let code: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        // curl prints 000 when nothing answered.
        (out.status.success() && code != 0).then_some(code)
    }

    /// Wait until both ends of site i's site link report carrier: a veth whose peer just
    /// came up takes a moment to show it, and the bridge forwards only through an up port.
    fn wait_link(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(oper_up(&self.hub, &hub_port(i)) && oper_up(self.netns(i), "site")) {
            assert!(Instant::now() < deadline, "site link {i} did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sites {
    fn drop(&mut self) {
        // Servers first: a namespace lives on while a process is in it.
        self.servers.clear();
        // Deleting a namespace destroys its veths, peers included, but the kernel does it
        // asynchronously; deleting the root ends here frees their names and addresses now.
        for link in &self.root_links {
            let _ = ip_quiet(&format!("link del dev {link}"));
        }
        for ns in self.namespaces.iter().chain([&self.hub]) {
            let _ = ip_quiet(&format!("netns del {ns}"));
        }
    }
}

/// The hub's end of site i's site link (bridge port).
fn hub_port(i: usize) -> String {
    format!("p{i}")
}

/// Make a namespace with IPv6 off, so its links carry only what the test sends.
fn add_netns(ns: &str) {
    ip(&format!("netns add {ns}"));
    // `default` for the links made after this, `all` for `lo`, which exists already.
    for conf in ["default", "all"] {
        let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", &format!("echo 1 > {path}")])
            .output()
            .expect("run ip netns exec");
        // Best effort: a kernel without IPv6 has no such file, and nothing to silence.
        if !out.status.success() {
            eprintln!("netns {ns}: cannot disable IPv6: {out:?}");
        }
    }
}

/// Is `dev` in namespace `ns` operationally up (carrier on both ends of a veth)?
fn oper_up(ns: &str, dev: &str) -> bool {
    let out = ip(&format!("-n {ns} -j link show dev {dev}"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j JSON");
    v[0]["operstate"] == "UP"
}

/// A Y for 10.77.Y.0/24 and 10.78.Y.0/24 that no root-namespace address or link name of
/// ours uses (another test process's sites, or leftovers of one that died). Starts from the
/// pid so that processes starting at the same moment rarely race for the same Y.
fn free_net() -> u8 {
    let out = ip("-j addr show");
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j JSON");
    let links = links.as_array().cloned().unwrap_or_default();
    let used = |y: u32| {
        links.iter().any(|l| {
            let name = l["ifname"].as_str().unwrap_or("");
            name.starts_with(&format!("cy{y}c"))
                || l["addr_info"].as_array().into_iter().flatten().any(|a| {
                    a["local"]
                        .as_str()
                        .is_some_and(|s| s.starts_with(&format!("10.78.{y}.")))
                })
        })
    };
    let start = std::process::id() % 256;
    (0..256)
        .map(|d| (start + d) % 256)
        .find(|&y| !used(y))
        .map(|y| y as u8)
        .expect("a free 10.78.Y.0/24 for the client links")
}

/// Delete namespaces this module made in test processes that are gone (killed before their
/// [`Sites`] dropped), so they do not pile up in /run/netns.
fn reap_stale() {
    let Ok(out) = ip_quiet("netns list") else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "NAME" or "NAME (id: N)".
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip_quiet(&format!("netns del {name}"));
        }
    }
}

/// `ip ARGS` (words split at spaces: names here have none); panics with its stderr unless it
/// succeeds.
fn ip(args: &str) -> Output {
    let out = ip_quiet(args).expect("run ip (iproute2; tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "ip {args} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ip ARGS`, whatever its outcome.
fn ip_quiet(args: &str) -> std::io::Result<Output> {
    Command::new("ip")
        .args(args.split_whitespace())
        .stdin(Stdio::null())
        .output()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two sites: this process reaches both over their client links; site 0 reaches site 1
    /// over the site link until site 1 is cut, and again once it is healed; the site link's
    /// byte count grows with that traffic.
    #[tokio::test(flavor = "multi_thread")]
    async fn cut_and_heal_two_sites() {
        // SAFETY: geteuid reads the process's effective uid; no memory is passed.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: network namespaces need root");
            return;
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let sites = Sites::start(2, tmp.path());
        for srv in &sites.servers {
            srv.client()
                .list_buckets()
                .send()
                .await
                .expect("ListBuckets");
        }

        let before = sites.site_traffic_bytes(1);
        assert_eq!(sites.probe(0, 1), Some(200), "site 0 reaches site 1");
        assert_eq!(sites.probe(1, 0), Some(200), "site 1 reaches site 0");
        let after = sites.site_traffic_bytes(1);
        assert!(after > before, "traffic counted: {before} -> {after}");

        sites.cut(1);
        assert_eq!(sites.probe(0, 1), None, "site 1 is cut off from site 0");
        assert_eq!(sites.probe(1, 0), None, "site 0 is cut off from site 1");
        // The client link does not go through the bridge.
        sites.servers[1]
            .client()
            .list_buckets()
            .send()
            .await
            .expect("ListBuckets on a cut site");
        let status = sites.servers[1].status_json();
        assert_eq!(status["running"], true, "admin socket of a cut site");

        sites.heal(1);
        assert_eq!(sites.probe(0, 1), Some(200), "healed");
        assert!(sites.site_traffic_bytes(1) > after, "traffic after heal");

        // Drop cleans up: no namespace or root link of these sites is left.
        let mut names = sites.namespaces.clone();
        names.push(sites.hub.clone());
        let links = sites.root_links.clone();
        drop(sites);
        let list = String::from_utf8_lossy(&ip("netns list").stdout).to_string();
        for ns in &names {
            assert!(!list.contains(ns.as_str()), "{ns} left: {list}");
        }
        for link in &links {
            let out = ip_quiet(&format!("link show dev {link}")).expect("run ip");
            assert!(!out.status.success(), "{link} left");
        }
    }
}
