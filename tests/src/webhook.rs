//! A webhook receiver for the notification tests: a plain HTTP/1.1 server on 127.0.0.1
//! that checks each POST's HMAC-SHA256 signature (`X-Cybs3-Signature: sha256=HEX`),
//! keeps the JSON bodies, and can be taken down (connections refused) and brought back
//! on the same port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Shared {
    /// Bodies received with a good signature, in arrival order.
    got: Mutex<Vec<serde_json::Value>>,
    /// Requests whose signature was missing or wrong.
    bad: Mutex<u32>,
    conns: Mutex<Vec<TcpStream>>,
}

pub struct Receiver {
    pub port: u16,
    secret: String,
    shared: Arc<Shared>,
    up: Option<Arc<AtomicBool>>,
}

impl Receiver {
    /// Listens on a port of its own (bound at once, so no other test can take it).
    pub fn start(secret: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
        let mut r = Receiver {
            port: listener.local_addr().expect("its address").port(),
            secret: secret.to_string(),
            shared: Arc::default(),
            up: None,
        };
        r.listen(listener);
        r
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Listens again on the same port.
    pub fn up(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind the receiver");
        self.listen(listener);
    }

    fn listen(&mut self, listener: TcpListener) {
        let up = Arc::new(AtomicBool::new(true));
        self.up = Some(up.clone());
        let (shared, secret) = (self.shared.clone(), self.secret.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if !up.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                shared.conns.lock().unwrap().push(conn.try_clone().unwrap());
                let (shared, secret) = (shared.clone(), secret.clone());
                std::thread::spawn(move || serve(conn, &shared, &secret));
            }
        });
    }

    /// Stops listening and cuts every open connection: the target is down.
    pub fn down(&mut self) {
        if let Some(up) = self.up.take() {
            up.store(false, Ordering::SeqCst);
            // Wake the accept loop so it sees the flag and drops the listener.
            let _ = TcpStream::connect(("127.0.0.1", self.port));
        }
        for c in self.shared.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
        // The listener is closed once its thread returns.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "the receiver did not go down"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The bodies received so far.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.shared.got.lock().unwrap().clone()
    }

    /// How many requests came without a good signature.
    pub fn bad_signatures(&self) -> u32 {
        *self.shared.bad.lock().unwrap()
    }
}

fn serve(conn: TcpStream, shared: &Shared, secret: &str) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let (mut len, mut signature) = (0usize, None);
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap_or((h, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => len = value.trim().parse().unwrap_or(0),
                "x-cybs3-signature" => signature = Some(value.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let want = format!("sha256={}", hex(ring::hmac::sign(&key, &body).as_ref()));
        match signature == Some(want) {
            true => match serde_json::from_slice(&body) {
                Ok(v) => shared.got.lock().unwrap().push(v),
                Err(_) => *shared.bad.lock().unwrap() += 1,
            },
            false => *shared.bad.lock().unwrap() += 1,
        }
        let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if out.write_all(reply).is_err() {
            return;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
