//! The `bulkhead-demo bookstore <app>` subcommands: read the environment (see the
//! [module docs](super)), bind, serve until shut down.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use tokio::net::TcpListener;

use super::catalog::CatalogService;
use super::frontend::Upstreams;
use super::inventory::{INITIAL_STOCK, Inventory};
use super::reviews::Version;
use super::{EnvError, catalog, frontend, inventory, listen_addr, ratings, reviews, upstream};

/// One bookstore app.
#[derive(Debug, Subcommand)]
pub enum App {
    /// The HTTP API (upstreams CATALOG, REVIEWS).
    Frontend(Listen),
    /// The gRPC `bookstore.v1.Catalog` (upstream INVENTORY).
    Catalog(Listen),
    /// Book reviews over HTTP; v2 adds ratings (upstream RATINGS, v2 only).
    Reviews(ReviewsArgs),
    /// A book's stars over HTTP, naming the instance that answered.
    Ratings(RatingsArgs),
    /// Stock counts over a TCP line protocol (commands STOCK and RESERVE).
    Inventory(Listen),
}

/// Where to listen.
#[derive(Debug, Args)]
pub struct Listen {
    /// Address to listen on, instead of 127.0.0.1:$PORT.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// `bookstore reviews`.
#[derive(Debug, Args)]
pub struct ReviewsArgs {
    #[command(flatten)]
    pub listen: Listen,
    /// v1: reviews only; v2: with ratings.
    #[arg(long, value_enum)]
    pub version: ReviewsVersion,
}

/// The reviews versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewsVersion {
    /// Reviews only.
    V1,
    /// Reviews with ratings.
    V2,
}

/// `bookstore ratings`.
#[derive(Debug, Args)]
pub struct RatingsArgs {
    #[command(flatten)]
    pub listen: Listen,
    /// The name this instance reports (default: $INSTANCE, else hostname:port).
    #[arg(long)]
    pub instance: Option<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Runs `app` until `shutdown` completes: exit 2 for a missing or malformed variable,
/// 1 when it cannot listen or serve.
pub async fn run(app: App, shutdown: impl Future<Output = ()> + Send) -> ExitCode {
    match start(app, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Env(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Env(EnvError),
    Run(String),
}

impl From<EnvError> for Failure {
    fn from(e: EnvError) -> Failure {
        Failure::Env(e)
    }
}

async fn bind(app: &str, addr: SocketAddr, protocol: &str) -> Result<TcpListener, Failure> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::Run(format!("{app}: cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr().unwrap_or(addr);
    println!("{app} listening on {local} ({protocol})");
    Ok(listener)
}

async fn start(app: App, shutdown: impl Future<Output = ()> + Send) -> Result<(), Failure> {
    match app {
        App::Frontend(l) => {
            let addr = listen_addr(l.listen, env)?;
            let upstreams = Upstreams {
                catalog: upstream("catalog", env)?,
                reviews: upstream("reviews", env)?,
            };
            let listener = bind("frontend", addr, "HTTP").await?;
            frontend::serve(listener, &upstreams, shutdown)
                .await
                .map_err(Failure::Run)
        }
        App::Catalog(l) => {
            let addr = listen_addr(l.listen, env)?;
            let service = CatalogService::new(&upstream("inventory", env)?);
            let listener = bind("catalog", addr, "gRPC").await?;
            catalog::serve(listener, service, shutdown)
                .await
                .map_err(|e| Failure::Run(format!("catalog: {e}")))
        }
        App::Reviews(args) => start_reviews(args, shutdown).await,
        App::Ratings(args) => {
            let addr = listen_addr(args.listen.listen, env)?;
            let listener = bind("ratings", addr, "HTTP").await?;
            let port = listener.local_addr().map_or(addr.port(), |a| a.port());
            let instance = (args.instance.or_else(|| env("INSTANCE")))
                .unwrap_or_else(|| ratings::default_instance(port));
            ratings::serve(listener, &instance, shutdown).await;
            Ok(())
        }
        App::Inventory(l) => {
            let addr = listen_addr(l.listen, env)?;
            let listener = bind("inventory", addr, "TCP line protocol").await?;
            inventory::serve(listener, Inventory::new(INITIAL_STOCK), shutdown).await;
            Ok(())
        }
    }
}

async fn start_reviews(
    args: ReviewsArgs,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Failure> {
    let addr = listen_addr(args.listen.listen, env)?;
    let version = match args.version {
        ReviewsVersion::V1 => Version::V1,
        ReviewsVersion::V2 => Version::V2 {
            ratings: upstream("ratings", env)?,
        },
    };
    let name = format!(
        "reviews {}",
        if version == Version::V1 { "v1" } else { "v2" }
    );
    let listener = bind(&name, addr, "HTTP").await?;
    reviews::serve(listener, version, shutdown).await;
    Ok(())
}
