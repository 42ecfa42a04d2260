//! `bulkhead waf test`: run one raw HTTP request through the OWASP CRS and say which rules
//! it triggers and why.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use bulkhead_waf::{RuleSet, Transaction, crs, http1, replay};
use clap::{Args, Subcommand, ValueEnum};

/// `bulkhead waf …`.
#[derive(Debug, Subcommand)]
pub(crate) enum WafCommand {
    /// Run one raw HTTP/1.1 request through the rules and show the rules it triggers.
    Test(TestArgs),
}

/// Output format of `waf test`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// Readable: one line per rule with its message and matched data.
    Text,
    /// Exactly one JSON object: `{"matched":[ids],"inbound_score":N,"action":"pass"|"block"}`.
    Json,
}

/// Arguments of `waf test`.
#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// A CRS directory: either its `rules/` folder or the folder holding `rules/`
    /// (default: the CRS v4.25.1 compiled into Bulkhead).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    /// SecLang configuration loaded before the rules (engine settings, crs-setup);
    /// default: the configuration of the CRS regression tests (DetectionOnly, paranoia 4).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Paranoia level 1-4 (sets tx.blocking_paranoia_level after the configuration).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=4))]
    paranoia: Option<u8>,
    /// The raw request as sent on the wire (request line, headers, body); `-` reads stdin.
    #[arg(long, value_name = "FILE|-")]
    request: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Format,
}

/// Runs a `waf` subcommand.
pub(crate) fn run(cmd: WafCommand) -> Result<ExitCode> {
    match cmd {
        WafCommand::Test(args) => test(args),
    }
}

fn test(args: TestArgs) -> Result<ExitCode> {
    let raw = read_request(&args.request)?;
    let request = http1::parse_request(&raw)
        .with_context(|| format!("request {}: not a valid HTTP/1.1 request", args.request))?;
    let rules = Arc::new(load_rules(&args)?);
    let backend = replay::albedo::respond(&request.method, &request.uri, &request.body);
    let tx = replay::run(&rules, &request, &backend);
    match args.output {
        Format::Json => println!("{}", json_summary(&tx)),
        Format::Text => print_text(&tx),
    }
    Ok(ExitCode::SUCCESS)
}

fn read_request(source: &str) -> Result<Vec<u8>> {
    let mut raw = Vec::new();
    if source == "-" {
        std::io::stdin()
            .read_to_end(&mut raw)
            .context("reading the request from standard input")?;
    } else {
        raw =
            std::fs::read(source).with_context(|| format!("cannot read request file {source}"))?;
    }
    if raw.is_empty() {
        bail!(
            "request {source} is empty: expected a raw HTTP/1.1 request (request line, headers, body)"
        );
    }
    Ok(raw)
}

fn load_rules(args: &TestArgs) -> Result<RuleSet> {
    let mut b = RuleSet::builder();
    b = match &args.config {
        Some(path) => b.file(path)?,
        None => b.text("<crs-test-config>", crs::TEST_CONFIG, Path::new("."))?,
    };
    if let Some(pl) = args.paranoia {
        let text = format!(
            "SecAction \"id:9000001,phase:1,pass,nolog,setvar:tx.blocking_paranoia_level={pl},setvar:tx.detection_paranoia_level={pl}\"\n"
        );
        b = b.text("<--paranoia>", &text, Path::new("."))?;
    }
    b = match &args.rules {
        None => b.embedded_crs()?,
        Some(dir) => {
            for file in rule_files(dir)? {
                b = b.file(&file)?;
            }
            b
        }
    };
    Ok(b.build()?)
}

/// The `*.conf` files of a CRS `rules/` folder (or of DIR/rules), sorted by name.
fn rule_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let nested = dir.join("rules");
    let dir = if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("--rules {}: cannot read the directory", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "--rules {}: no *.conf rule files (expected a CRS rules/ folder)",
            dir.display()
        );
    }
    Ok(files)
}

/// "block" when a rule decided to stop the transaction (enforced with SecRuleEngine On,
/// only logged in DetectionOnly), "pass" otherwise.
fn action(tx: &Transaction) -> &'static str {
    if tx.intervention().is_some() || tx.matches().iter().any(|m| m.disruptive) {
        "block"
    } else {
        "pass"
    }
}

fn json_summary(tx: &Transaction) -> String {
    serde_json::json!({
        "matched": tx.logged_ids(),
        "inbound_score": tx.inbound_anomaly_score(),
        "action": action(tx),
    })
    .to_string()
}

fn print_text(tx: &Transaction) {
    let logged: Vec<_> = tx.matches().iter().filter(|m| m.logged).collect();
    if logged.is_empty() {
        println!("no rule matched");
    }
    for m in logged {
        println!("{:>6}  phase {}  {}", m.id, m.phase, m.msg);
        if !m.data.is_empty() {
            println!("        {}", m.data);
        }
    }
    let enforced = match tx.intervention() {
        Some(i) => format!(" (stopped by rule {} with status {})", i.rule_id, i.status),
        None if action(tx) == "block" => " (not enforced: the engine is not On)".to_string(),
        None => String::new(),
    };
    println!("inbound anomaly score: {}", tx.inbound_anomaly_score());
    println!("action: {}{enforced}", action(tx));
}
