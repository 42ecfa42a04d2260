//! `bulkhead-demo`: the tiny apps of Bulkhead's examples (see the library docs).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bulkhead_demo::bookstore::cli::App;
use bulkhead_demo::call::{self, Call};
use bulkhead_demo::serve::Server;
use bulkhead_demo::{duration, terminated};
use clap::{Args, Parser, Subcommand};
use http::header::{HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri};

/// Tiny demo apps for Bulkhead's examples.
#[derive(Debug, Parser)]
#[command(name = "bulkhead-demo", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP/1.1 and HTTP/2, answering JSON: name, method, path, peer identity.
    Serve(ServeArgs),
    /// Send a bounded number of HTTP requests and print each status and body.
    Call(CallArgs),
    /// The bookstore example's apps; each reads PORT and UPSTREAM_<NAME> (host:port).
    #[command(subcommand)]
    Bookstore(App),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the line printed at start names it).
    #[arg(long)]
    listen: SocketAddr,
    /// The app's name, repeated in every answer.
    #[arg(long)]
    name: String,
    /// Hold every answer this long (`50ms`, `1s`): a slow replica.
    #[arg(long, default_value = "0s", value_parser = duration::parse)]
    delay: Duration,
}

#[derive(Debug, Args)]
struct CallArgs {
    /// `http://host:port/path`.
    #[arg(long)]
    url: Uri,
    /// How many requests.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    count: u32,
    /// Pause between requests (`250ms`, `1s`, `2m`).
    #[arg(long, default_value = "1s", value_parser = duration::parse)]
    interval: Duration,
    /// Request method.
    #[arg(short = 'X', long, default_value = "GET")]
    method: Method,
    /// Extra request header, `name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Speak HTTP/2 (prior knowledge) instead of HTTP/1.1.
    #[arg(long)]
    http2: bool,
    /// Per-request deadline.
    #[arg(long, default_value = "10s", value_parser = duration::parse)]
    timeout: Duration,
    /// Exit 1 unless every response has this status.
    #[arg(long)]
    expect: Option<StatusCode>,
    /// Print only the response bodies.
    #[arg(long)]
    raw: bool,
}

fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}`: expected `name: value`"))?;
    let name = HeaderName::try_from(name.trim()).map_err(|e| format!("`{name}`: {e}"))?;
    let value = HeaderValue::try_from(value.trim()).map_err(|e| format!("`{value}`: {e}"))?;
    Ok((name, value))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Call(args) => call(args).await,
        Command::Bookstore(app) => bulkhead_demo::bookstore::cli::run(app, terminated()).await,
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let server = match Server::bind(args.listen, &args.name).await {
        Ok(server) => server.with_delay(args.delay),
        Err(e) => {
            eprintln!(
                "error: {}: cannot listen on {}: {e}",
                args.name, args.listen
            );
            return ExitCode::FAILURE;
        }
    };
    match server.local_addr() {
        Ok(addr) => println!("{} listening on {addr} (HTTP/1.1, HTTP/2)", args.name),
        Err(e) => eprintln!("warning: {}: local address unknown: {e}", args.name),
    }
    server.serve(std::io::stdout(), terminated()).await;
    ExitCode::SUCCESS
}

async fn call(args: CallArgs) -> ExitCode {
    let call = Call {
        url: args.url,
        method: args.method,
        headers: args.headers,
        count: args.count,
        interval: args.interval,
        http2: args.http2,
        timeout: args.timeout,
        expect: args.expect,
        raw: args.raw,
    };
    let outcomes = match call::run(&call, &mut std::io::stdout()).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            return ExitCode::FAILURE;
        }
    };
    if call::succeeded(&call, &outcomes) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_as_name_colon_value() {
        let (name, value) = parse_header("X-Request-Id:  abc ").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-request-id", "abc")
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: v").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
