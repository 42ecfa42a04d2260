//! The splice with tokio's clock paused: the idle watchdog is driven by virtual time, so
//! every deadline below is exact and nothing waits in real time.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

use super::{Spliced, splice};

const IDLE: Duration = Duration::from_secs(10);
/// An upper bound for waits that must end by themselves (virtual time: costs nothing).
const BOUND: Duration = Duration::from_secs(24 * 3600);

/// client ⇄ (downstream) splice (upstream) ⇄ server.
struct Wired {
    client: DuplexStream,
    server: DuplexStream,
    splice: JoinHandle<Spliced>,
}

fn wire(idle: Option<Duration>) -> Wired {
    let (client, downstream) = duplex(64 * 1024);
    let (upstream, server) = duplex(64 * 1024);
    let splice = tokio::spawn(splice(Box::new(downstream), Box::new(upstream), idle));
    Wired {
        client,
        server,
        splice,
    }
}

/// Reads until EOF (bounded); returns what arrived before it.
async fn read_to_eof(io: &mut DuplexStream) -> Vec<u8> {
    let mut rest = Vec::new();
    timeout(BOUND, io.read_to_end(&mut rest))
        .await
        .expect("EOF before the bound")
        .unwrap();
    rest
}

async fn read_n(io: &mut DuplexStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    io.read_exact(&mut buf).await.unwrap();
    buf
}

/// `elapsed` is `expected` up to the timer wheel's millisecond resolution.
fn assert_about(elapsed: Duration, expected: Duration) {
    assert!(
        elapsed >= expected && elapsed <= expected + Duration::from_millis(5),
        "{elapsed:?} is not {expected:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_connection_is_closed_on_both_sides_after_the_timeout() {
    let mut w = wire(Some(IDLE));
    let start = Instant::now();
    w.client.write_all(b"hi").await.unwrap();
    assert_eq!(read_n(&mut w.server, 2).await, b"hi");
    assert!(read_to_eof(&mut w.client).await.is_empty());
    assert_about(start.elapsed(), IDLE);
    assert!(read_to_eof(&mut w.server).await.is_empty());
    let spliced = w.splice.await.unwrap();
    assert_eq!(
        spliced,
        Spliced {
            bytes_in: 2,
            bytes_out: 0,
            idle: true
        }
    );
}

#[tokio::test(start_paused = true)]
async fn bytes_in_either_direction_reset_the_timer() {
    let mut w = wire(Some(IDLE));
    let start = Instant::now();
    // Client to server at 6 s, server to client at 12 s: each before the deadline the
    // previous activity set, so the connection lives until 12 s + IDLE.
    sleep(Duration::from_secs(6)).await;
    w.client.write_all(b"a").await.unwrap();
    assert_eq!(read_n(&mut w.server, 1).await, b"a");
    sleep(Duration::from_secs(6)).await;
    w.server.write_all(b"bb").await.unwrap();
    assert_eq!(read_n(&mut w.client, 2).await, b"bb");
    assert!(read_to_eof(&mut w.client).await.is_empty());
    assert_about(start.elapsed(), Duration::from_secs(12) + IDLE);
    let spliced = w.splice.await.unwrap();
    assert_eq!(
        (spliced.bytes_in, spliced.bytes_out, spliced.idle),
        (1, 2, true)
    );
}

#[tokio::test(start_paused = true)]
async fn half_close_is_carried_and_the_open_half_still_times_out() {
    let mut w = wire(Some(IDLE));
    w.client.write_all(b"req").await.unwrap();
    w.client.shutdown().await.unwrap();
    // The server sees the client's EOF and answers on the half that is still open.
    assert_eq!(read_to_eof(&mut w.server).await, b"req");
    w.server.write_all(b"resp").await.unwrap();
    let answered = Instant::now();
    assert_eq!(read_n(&mut w.client, 4).await, b"resp");
    // The server never closes its half: the proxy does, once the stream is idle.
    assert!(read_to_eof(&mut w.client).await.is_empty());
    assert_about(answered.elapsed(), IDLE);
    let spliced = w.splice.await.unwrap();
    assert_eq!(
        (spliced.bytes_in, spliced.bytes_out, spliced.idle),
        (3, 4, true)
    );
}

#[tokio::test(start_paused = true)]
async fn both_halves_closed_ends_the_splice_without_waiting() {
    let mut w = wire(Some(IDLE));
    let start = Instant::now();
    w.client.write_all(b"ping").await.unwrap();
    w.client.shutdown().await.unwrap();
    assert_eq!(read_to_eof(&mut w.server).await, b"ping");
    w.server.write_all(b"pong").await.unwrap();
    w.server.shutdown().await.unwrap();
    assert_eq!(read_to_eof(&mut w.client).await, b"pong");
    let spliced = w.splice.await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        (spliced.bytes_in, spliced.bytes_out, spliced.idle),
        (4, 4, false)
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_timeout_an_idle_connection_stays_open() {
    let mut w = wire(None);
    let mut buf = [0u8; 1];
    assert!(
        timeout(BOUND, w.client.read(&mut buf)).await.is_err(),
        "closed without a timeout"
    );
    w.client.shutdown().await.unwrap();
    assert!(read_to_eof(&mut w.server).await.is_empty());
    w.server.shutdown().await.unwrap();
    assert!(read_to_eof(&mut w.client).await.is_empty());
    assert!(!w.splice.await.unwrap().idle);
}

#[tokio::test(start_paused = true)]
async fn byte_counts_are_exact_when_the_copy_fails() {
    let mut w = wire(Some(IDLE));
    w.client.write_all(b"abc").await.unwrap();
    assert_eq!(read_n(&mut w.server, 3).await, b"abc");
    w.server.write_all(b"xy").await.unwrap();
    assert_eq!(read_n(&mut w.client, 2).await, b"xy");
    // The server vanishes: the client's next bytes cannot be delivered.
    drop(w.server);
    w.client.write_all(b"lost").await.unwrap();
    let spliced = timeout(BOUND, w.splice).await.unwrap().unwrap();
    assert!(!spliced.idle);
    // "lost" was read from the client before writing it towards the server failed.
    assert_eq!((spliced.bytes_in, spliced.bytes_out), (7, 2));
}
