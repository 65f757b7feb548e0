//! What a network brings, over real loopback sockets: slow, truncated, oversized and
//! vanishing uploads, and a shutdown while a request is in flight. Every answer is a
//! clear 4xx/5xx and the server stays up.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use boneage_server::{State, serve};

use crate::{BOUNDARY, Part, blank_png, form, service};

/// A server on a free loopback port, on its own thread; `stop` ends it gracefully
/// and `join` waits for it.
struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(state: Arc<State>) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            crate::runtime().block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                serve(state, listener, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
            });
        });
        Self {
            addr: addr_rx.recv().unwrap(),
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    fn stop_and_join(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Reads an HTTP/1.1 answer to its end (the server closes: `Connection: close`).
fn answer(s: &mut TcpStream) -> (u16, String) {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    (status, text)
}

fn upload_head(addr: SocketAddr, length: u64) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v1/assessments HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {length}\r\n\r\n"
    )
    .unwrap();
    s
}

fn healthz(addr: SocketAddr) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    answer(&mut s).0
}

#[test]
fn slow_truncated_oversized_and_vanishing_uploads_get_answers_and_the_server_stays_up() {
    // One timeout covers the upload, the wait for a worker and the assessment. It
    // must be short for the slow client below to be cut off soon, and long enough
    // for the last, whole upload to be assessed by a debug build on a loaded
    // 2-core machine (at 2 s that failed now and then).
    const TIMEOUT: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let state = service(dir.path(), |c| {
        c.timeout = Duration::from_secs(TIMEOUT);
        c.body_limit = 1 << 20;
    });
    let server = Running::start(state.clone());
    let addr = server.addr;
    let body = form(&[Part::File("image", &blank_png()), Part::Text("sex", "F")]);

    // A 2 GB declared length: 413 before a byte of the body is read.
    let t = Instant::now();
    let mut s = upload_head(addr, 2 << 30);
    let (status, text) = answer(&mut s);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("declares 2147483648 bytes"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(TIMEOUT));

    // Headers that never end: the connection is cut once the timeout has passed.
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "POST /v1/assessments HTTP/1.1\r\nHost: {addr}\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        t.elapsed() < Duration::from_secs(2 * TIMEOUT),
        "a client that never finishes its headers is cut off (held {:?})",
        t.elapsed()
    );

    // One byte a second: 408 once the timeout has passed.
    let t = Instant::now();
    let mut s = upload_head(addr, body.len() as u64);
    let mut sent = 0;
    s.set_nonblocking(false).unwrap();
    while t.elapsed() < Duration::from_secs(TIMEOUT + 3) && sent < body.len() {
        if s.write_all(&body[sent..sent + 1]).is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    let (status, text) = answer(&mut s);
    assert_eq!(status, 408, "{text}");
    assert!(
        text.contains(&format!("did not arrive within {TIMEOUT} s")),
        "{text}"
    );

    // Truncated: the client stops sending and closes its side.
    let mut s = upload_head(addr, body.len() as u64);
    s.write_all(&body[..body.len() / 3]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let (status, text) = answer(&mut s);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("ended early"), "{text}");

    // Garbage where the form should be.
    let mut s = upload_head(addr, 64);
    s.write_all(&[0xA5; 64]).unwrap();
    let (status, text) = answer(&mut s);
    assert!(status == 400, "{text}");

    // Gone mid-upload: nothing to answer, and the server carries on.
    let mut s = upload_head(addr, body.len() as u64);
    s.write_all(&body[..body.len() / 2]).unwrap();
    drop(s);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(healthz(addr), 200);

    // A whole upload still works after all that.
    let mut s = upload_head(addr, body.len() as u64);
    s.write_all(&body).unwrap();
    let (status, text) = answer(&mut s);
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("no hand found"), "{text}");
    assert_eq!(state.store.integrity().unwrap(), "ok");
}

#[test]
fn a_shutdown_finishes_the_requests_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let state = service(dir.path(), |_| {});
    let mut server = Running::start(state.clone());
    let addr = server.addr;
    let body = form(&[Part::File("image", &blank_png()), Part::Text("sex", "F")]);
    // Half of an upload is in, then the server is told to stop …
    let mut s = upload_head(addr, body.len() as u64);
    s.write_all(&body[..body.len() / 2]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stop = server.stop.take().unwrap();
    stop.send(()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // … new connections are no longer answered …
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1))
            .and_then(|mut c| {
                write!(
                    c,
                    "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )?;
                c.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut b = [0u8; 16];
                let n = c.read(&mut b)?;
                if n == 0 {
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                } else {
                    Ok(())
                }
            })
            .is_err(),
        "a stopping server takes no new requests"
    );
    // … and the one in flight is finished and recorded.
    s.write_all(&body[body.len() / 2..]).unwrap();
    let (status, text) = answer(&mut s);
    assert_eq!(status, 422, "{text}");
    server.stop_and_join();
    let rows = state.store.list(10, None).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, 422);
}
