//! Connections that send nothing: a flood of them must not starve health probes or S3
//! clients (the cap sheds the longest-idle ones), and each is closed after the idle
//! timeout, before its first request and between keep-alive requests.

mod common;

use common::*;
use cybs3_tests::{http_status, Server};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Raise this process's open file limit to its hard limit, and return it.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid rlimit; the call only reads it.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    lim.rlim_cur
}

/// Whether the server has closed `conn` (EOF or reset), without waiting.
fn closed_by_server(mut conn: &TcpStream) -> bool {
    conn.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    match conn.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    }
}

/// Seconds until the server closes `conn`, which sends nothing more (at most `limit`).
fn seconds_until_closed(conn: &mut TcpStream, limit: Duration) -> f64 {
    let started = Instant::now();
    conn.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            // The rest of an answer the server gave before going quiet.
            Ok(n) if n > 0 => continue,
            Ok(_) => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("still open after {limit:?}")
            }
            Err(_) => break,
        }
    }
    started.elapsed().as_secs_f64()
}

fn started(args: &[&str]) -> (tempfile::TempDir, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let mut srv = Server::new(tmp.path(), 1, None);
    srv.args = args.iter().map(|a| a.to_string()).collect();
    srv.start();
    (tmp, srv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_leave_health_and_s3_answering() {
    const IDLE: usize = 10_000;
    const CAP: usize = 1_000;
    assert!(
        raise_fd_limit() > IDLE as u64 + 200,
        "this test needs {IDLE}+ descriptors"
    );
    let (_tmp, srv) = started(&[
        "--max-connections",
        &CAP.to_string(),
        "--idle-timeout",
        "60",
    ]);
    let c = srv.client();
    bucket(&c, "flood").await;

    let port = srv.port;
    let idle = tokio::task::spawn_blocking(move || {
        (0..IDLE)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();

    // With every slot taken by a silent connection, new clients still get answers at once.
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(http_status(srv.port, "/health/live"), Some(200));
        let health = t.elapsed();
        assert!(health < Duration::from_secs(1), "health took {health:?}");
    }
    let t = Instant::now();
    put(&c, "flood", "k", b"still serving".to_vec()).await;
    assert_eq!(get(&c, "flood", "k").await, b"still serving");
    let s3 = t.elapsed();
    assert!(s3 < Duration::from_secs(1), "PUT + GET took {s3:?}");

    // The server made room by closing idle connections, and kept no more than the cap.
    let deadline = Instant::now() + Duration::from_secs(10);
    let open = loop {
        let open = idle.iter().filter(|s| !closed_by_server(s)).count();
        if open <= CAP || Instant::now() > deadline {
            break open;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(open <= CAP, "{open} of {IDLE} idle connections still open");
    // The oldest went first: the last one opened is still there.
    assert!(!closed_by_server(idle.last().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_keep_alive_connections_close_after_the_idle_timeout() {
    let (_tmp, srv) = started(&["--idle-timeout", "2"]);
    // Silent from the start: hyper's header timer never starts for it.
    let mut silent = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    // One request answered, then nothing (HTTP/1.1 keeps it open by default).
    let mut kept = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    kept.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    kept.read_exact(&mut head).unwrap();
    assert_eq!(&head[9..12], b"200");

    let (silent_s, kept_s) = std::thread::scope(|s| {
        let a = s.spawn(|| seconds_until_closed(&mut silent, Duration::from_secs(10)));
        let b = s.spawn(|| seconds_until_closed(&mut kept, Duration::from_secs(10)));
        (a.join().unwrap(), b.join().unwrap())
    });
    for (what, secs) in [("silent", silent_s), ("keep-alive", kept_s)] {
        assert!(
            (1.5..4.0).contains(&secs),
            "{what} connection closed after {secs:.2} s"
        );
    }

    // A connection that keeps talking is not idle, however long it lives.
    let mut busy = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    let mut answers = 0;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        busy.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut resp = [0u8; 1024];
        let n = busy.read(&mut resp).unwrap();
        assert!(
            n >= 12 && &resp[9..12] == b"200",
            "answer {answers}: {n} bytes"
        );
        answers += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(answers >= 7, "{answers} answers in 4 s");
}
