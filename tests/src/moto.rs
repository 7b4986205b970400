//! moto's S3 server (`pip install 'moto[server]'`; `tests/run.sh` installs it): an
//! independent S3 implementation, as a foreign S3 system for remote tiers and
//! replication.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto server on a free port of 127.0.0.1, stopped on drop. Any keys are accepted.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = crate::free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]'; tests/run.sh does)");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// An aws-sdk-s3 client of it.
    pub fn client(&self) -> aws_sdk_s3::Client {
        crate::client_for(&self.endpoint, "moto-key", "moto-secret")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
