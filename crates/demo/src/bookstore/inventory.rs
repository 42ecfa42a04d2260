//! `bulkhead-demo bookstore inventory`: the stock store, speaking a line protocol over
//! plain TCP (so the mesh carries a non-HTTP protocol too).
//!
//! # Protocol
//!
//! A client sends commands, one per line (`\n` or `\r\n`), and gets exactly one reply
//! line per command, in order; one connection may send any number of commands.
//!
//! | command | reply |
//! |---|---|
//! | `STOCK <id>` | `OK <n>`: copies of book `<id>` in stock (0 for an unknown id) |
//! | `RESERVE <id> <n>` | `OK <left>` after taking `n` copies, or `ERR insufficient` (nothing taken) |
//! | anything else | `ERR unknown command` |
//! | a known command with wrong arguments | `ERR usage: STOCK <id>` / `ERR usage: RESERVE <id> <n>` |
//!
//! Command words are case-insensitive; words are separated by spaces or tabs. A line
//! over [`MAX_LINE`] bytes gets `ERR line too long` and the connection is closed, and so
//! is a connection idle (no complete line) for [`IDLE_TIMEOUT`].
//!
//! ```text
//! $ nc 127.0.0.1 $PORT
//! STOCK 1
//! OK 7
//! RESERVE 1 5
//! OK 2
//! RESERVE 1 5
//! ERR insufficient
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Clients that send no complete line for this long are disconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest command line accepted, in bytes (without the newline).
pub const MAX_LINE: usize = 1024;

/// The stock the inventory starts with: the catalog's five books.
pub const INITIAL_STOCK: &[(&str, u64)] = &[("1", 7), ("2", 3), ("3", 12), ("4", 0), ("5", 5)];

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `STOCK <id>`.
    Stock(String),
    /// `RESERVE <id> <n>`.
    Reserve(String, u64),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Stock(id) => write!(f, "STOCK {id}"),
            Command::Reserve(id, n) => write!(f, "RESERVE {id} {n}"),
        }
    }
}

/// Why a line is not a command; its `Display` is the reply line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Not a known command word.
    Unknown,
    /// `STOCK` with other than one argument.
    StockUsage,
    /// `RESERVE` without an id and a count.
    ReserveUsage,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Unknown => "ERR unknown command",
            ParseError::StockUsage => "ERR usage: STOCK <id>",
            ParseError::ReserveUsage => "ERR usage: RESERVE <id> <n>",
        })
    }
}

impl std::error::Error for ParseError {}

/// Parses one command line (without its line ending).
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
    let verb = words.next().ok_or(ParseError::Unknown)?;
    let args: Vec<&str> = words.collect();
    if verb.eq_ignore_ascii_case("STOCK") {
        match args.as_slice() {
            [id] => Ok(Command::Stock((*id).to_owned())),
            _ => Err(ParseError::StockUsage),
        }
    } else if verb.eq_ignore_ascii_case("RESERVE") {
        match args.as_slice() {
            [id, n] => n
                .parse()
                .map(|n| Command::Reserve((*id).to_owned(), n))
                .map_err(|_| ParseError::ReserveUsage),
            _ => Err(ParseError::ReserveUsage),
        }
    } else {
        Err(ParseError::Unknown)
    }
}

/// The stock counts; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    stock: Arc<Mutex<HashMap<String, u64>>>,
}

impl Inventory {
    /// An inventory holding `stock`.
    pub fn new<'a>(stock: impl IntoIterator<Item = &'a (&'a str, u64)>) -> Inventory {
        let stock = stock
            .into_iter()
            .map(|(id, n)| ((*id).to_owned(), *n))
            .collect();
        Inventory {
            stock: Arc::new(Mutex::new(stock)),
        }
    }

    /// Runs `command`, answering its reply line (without the newline).
    pub fn apply(&self, command: &Command) -> String {
        let mut stock = match self.stock.lock() {
            Ok(stock) => stock,
            Err(poisoned) => poisoned.into_inner(),
        };
        match command {
            Command::Stock(id) => format!("OK {}", stock.get(id).copied().unwrap_or(0)),
            Command::Reserve(id, n) => match stock.get_mut(id) {
                Some(have) if *have >= *n => {
                    *have -= n;
                    format!("OK {have}")
                }
                _ => "ERR insufficient".to_owned(),
            },
        }
    }

    /// The reply line to a raw command line.
    pub fn answer(&self, line: &str) -> String {
        match parse(line) {
            Ok(command) => self.apply(&command),
            Err(e) => e.to_string(),
        }
    }
}

/// Serves `inventory` on `listener` until `shutdown` completes, logging each command
/// and its reply to standard error.
pub async fn serve(
    listener: TcpListener,
    inventory: Inventory,
    shutdown: impl Future<Output = ()>,
) {
    serve_with_idle(listener, inventory, IDLE_TIMEOUT, shutdown).await;
}

/// [`serve`] with another idle timeout (for tests).
pub async fn serve_with_idle(
    listener: TcpListener,
    inventory: Inventory,
    idle: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    conns.spawn(connection(tcp, inventory.clone(), idle));
                }
                Err(e) => {
                    eprintln!("inventory: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    conns.shutdown().await;
}

/// One line read from a client.
enum Line {
    Text(String),
    TooLong,
    Closed,
}

async fn read_line(reader: &mut BufReader<TcpStream>) -> std::io::Result<Line> {
    let mut buf = Vec::new();
    let limit = (MAX_LINE + 2) as u64; // room for "\r\n"
    let n = reader.take(limit).read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Ok(Line::Closed);
    }
    if buf.last() != Some(&b'\n') {
        // Either over the limit or EOF in mid-line: a final unterminated line counts.
        if buf.len() as u64 >= limit {
            return Ok(Line::TooLong);
        }
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    if buf.len() > MAX_LINE {
        return Ok(Line::TooLong);
    }
    Ok(Line::Text(String::from_utf8_lossy(&buf).into_owned()))
}

async fn connection(tcp: TcpStream, inventory: Inventory, idle: Duration) {
    let _ = tcp.set_nodelay(true);
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let mut reader = BufReader::new(tcp);
    loop {
        let line = match tokio::time::timeout(idle, read_line(&mut reader)).await {
            Err(_) => {
                eprintln!("inventory: {peer}: idle for {idle:?}, closing");
                break;
            }
            Ok(Err(_) | Ok(Line::Closed)) => break,
            Ok(Ok(Line::TooLong)) => {
                let _ = reader.get_mut().write_all(b"ERR line too long\n").await;
                break;
            }
            Ok(Ok(Line::Text(line))) => line,
        };
        let reply = inventory.answer(&line);
        eprintln!("inventory: {} -> {reply}", line.trim());
        let mut out = reply.into_bytes();
        out.push(b'\n');
        if reader.get_mut().write_all(&out).await.is_err() {
            break;
        }
    }
    let _ = reader.get_mut().shutdown().await;
}

/// Sends one command to the inventory at `addr` on a fresh connection and returns the
/// reply line, within `timeout`.
pub async fn ask(addr: &str, command: &Command, timeout: Duration) -> std::io::Result<String> {
    let exchange = async {
        let mut tcp = BufReader::new(TcpStream::connect(addr).await?);
        tcp.get_mut()
            .write_all(format!("{command}\n").as_bytes())
            .await?;
        let mut reply = String::new();
        if tcp.read_line(&mut reply).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the inventory closed the connection without a reply",
            ));
        }
        Ok(reply.trim_end().to_owned())
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no reply within {timeout:?}"),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("STOCK 1"), Ok(Command::Stock("1".into())));
        assert_eq!(parse("reserve  a\t3"), Ok(Command::Reserve("a".into(), 3)));
        assert_eq!(parse(""), Err(ParseError::Unknown));
        assert_eq!(parse("SELL 1"), Err(ParseError::Unknown));
        assert_eq!(parse("STOCK"), Err(ParseError::StockUsage));
        assert_eq!(parse("RESERVE 1 -2"), Err(ParseError::ReserveUsage));
    }

    #[test]
    fn reserving_takes_stock_until_it_is_insufficient() {
        let inv = Inventory::new(&[("1", 7)]);
        assert_eq!(inv.answer("STOCK 1"), "OK 7");
        assert_eq!(inv.answer("RESERVE 1 5"), "OK 2");
        assert_eq!(inv.answer("RESERVE 1 5"), "ERR insufficient");
        assert_eq!(inv.answer("STOCK 1"), "OK 2");
        assert_eq!(inv.answer("STOCK 9"), "OK 0");
        assert_eq!(inv.answer("RESERVE 9 1"), "ERR insufficient");
        assert_eq!(inv.answer("HELLO"), "ERR unknown command");
    }

    fn id() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.-]{1,20}"
    }

    fn command() -> impl Strategy<Value = Command> {
        prop_oneof![
            id().prop_map(Command::Stock),
            (id(), any::<u64>()).prop_map(|(id, n)| Command::Reserve(id, n)),
        ]
    }

    proptest! {
        #[test]
        fn commands_round_trip_through_their_line(cmd in command(), sep in "[ \t]{1,3}") {
            prop_assert_eq!(parse(&cmd.to_string()), Ok(cmd.clone()));
            let spaced = cmd.to_string().replace(' ', &sep);
            prop_assert_eq!(parse(&format!("{sep}{spaced}{sep}")), Ok(cmd));
        }

        #[test]
        fn any_line_parses_or_gets_an_err_reply(line in "\\PC{0,80}") {
            match parse(&line) {
                Ok(cmd) => {
                    let verb = line.split([' ', '\t']).find(|w| !w.is_empty()).unwrap();
                    let known = ["STOCK", "RESERVE"].iter().any(|v| verb.eq_ignore_ascii_case(v));
                    prop_assert!(known, "{:?} parsed as {:?}", line, cmd);
                }
                Err(e) => prop_assert!(e.to_string().starts_with("ERR ")),
            }
        }

        #[test]
        fn reserve_counts_parse_exactly(id in id(), n in any::<u64>()) {
            let line = format!("RESERVE {id} {n}");
            prop_assert_eq!(parse(&line), Ok(Command::Reserve(id.clone(), n)));
            let over = format!("RESERVE {id} {}", u128::from(n) + u128::from(u64::MAX) + 1);
            prop_assert_eq!(parse(&over), Err(ParseError::ReserveUsage));
        }
    }
}
