//! `bulkhead policy eval | explain | check`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bulkhead_policy::query::Query;
use bulkhead_policy::{Engine, Options};
use bulkhead_resources::load::load_paths;
use bulkhead_resources::{ResourceSet, waf};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Map, Value, json};

/// Policy subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Decide a stream of JSONL queries against a set of resources (one decision per line).
    Eval(EvalArgs),
    /// Decide one query and explain every policy that took part.
    Explain(Box<ExplainArgs>),
    /// Validate and compile resources; report what was loaded.
    Check(ResourceArgs),
}

/// Where resources come from and how policies read.
#[derive(Debug, Args)]
pub(crate) struct ResourceArgs {
    /// Resource file or directory (recursive: *.yaml, *.yml, *.json); repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// The mesh trust domain.
    #[arg(long, default_value = "cluster.local")]
    trust_domain: String,
    /// Another trust domain treated as the local one; repeatable.
    #[arg(long = "trust-domain-alias")]
    trust_domain_aliases: Vec<String>,
    /// Namespace whose policies apply mesh-wide.
    #[arg(long, default_value = "bulkhead-system")]
    root_namespace: String,
}

/// `policy eval` flags.
#[derive(Debug, Args)]
pub(crate) struct EvalArgs {
    #[command(flatten)]
    resources: ResourceArgs,
    /// JSONL query file, or `-` for standard input.
    #[arg(long)]
    queries: PathBuf,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// `policy explain` flags: one query.
#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    #[command(flatten)]
    resources: ResourceArgs,
    /// Source Pod or Workload as namespace/name (or describe a raw peer with --from-ip etc.).
    #[arg(long)]
    from: Option<String>,
    /// Raw source address.
    #[arg(long)]
    from_ip: Option<String>,
    /// Raw source namespace (an in-cluster pod not in the resources).
    #[arg(long)]
    from_namespace: Option<String>,
    /// Raw source label key=value; repeatable.
    #[arg(long = "from-label", value_parser = key_value)]
    from_labels: Vec<(String, String)>,
    /// Raw source mTLS principal (td/ns/x/sa/y); without it a raw source is plaintext.
    #[arg(long)]
    principal: Option<String>,
    /// Destination Pod or Workload as namespace/name.
    #[arg(long)]
    to: Option<String>,
    /// Destination address outside the mesh.
    #[arg(long)]
    to_ip: Option<String>,
    /// Destination port.
    #[arg(long)]
    port: u16,
    /// TCP, UDP or SCTP.
    #[arg(long, default_value = "TCP")]
    protocol: String,
    /// HTTP method (makes the query an HTTP request).
    #[arg(long)]
    method: Option<String>,
    /// HTTP path.
    #[arg(long)]
    path: Option<String>,
    /// HTTP host.
    #[arg(long)]
    host: Option<String>,
    /// HTTP header name=value; repeatable.
    #[arg(long = "header", value_parser = key_value)]
    headers: Vec<(String, String)>,
    /// Validated JWT as a JSON object ({"iss":…,"sub":…,"aud":…,"claims":{…}}).
    #[arg(long)]
    jwt: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected key=value, got `{s}`"))
}

pub(crate) fn run(cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Eval(args) => eval(args),
        PolicyCommand::Explain(args) => explain(*args),
        PolicyCommand::Check(args) => check(args),
    }
}

fn compile(args: &ResourceArgs) -> Result<Engine> {
    let resources = load_paths(&args.files).map_err(|e| anyhow::anyhow!("{e}"))?;
    compile_set(args, &resources)
}

fn compile_set(args: &ResourceArgs, resources: &ResourceSet) -> Result<Engine> {
    let options = Options {
        trust_domain: args.trust_domain.clone(),
        trust_domain_aliases: args.trust_domain_aliases.clone(),
        root_namespace: args.root_namespace.clone(),
    };
    Ok(Engine::compile(resources, options)?)
}

fn eval(args: EvalArgs) -> Result<ExitCode> {
    let engine = compile(&args.resources)?;
    let input: Box<dyn BufRead> = if args.queries.as_os_str() == "-" {
        Box::new(BufReader::new(io::stdin().lock()))
    } else {
        let file = File::open(&args.queries)
            .with_context(|| format!("cannot open query file {}", args.queries.display()))?;
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let origin = args.queries.display().to_string();
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut line = String::new();
    let mut reader = input;
    let mut number = 0usize;
    loop {
        line.clear();
        if reader
            .read_line(&mut line)
            .with_context(|| format!("reading {origin}"))?
            == 0
        {
            break;
        }
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        let record = decide(&engine, &line).with_context(|| format!("{origin}: line {number}"))?;
        serde_json::to_writer(&mut out, &record)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn decide(engine: &Engine, line: &str) -> Result<Value> {
    let query = Query::parse(line)?;
    let request = query.request(engine)?;
    let decision = engine.evaluate(&request);
    let mut record = Map::new();
    record.insert("id".into(), query.id.clone());
    record.extend(decision.to_json());
    Ok(Value::Object(record))
}

fn explain(args: ExplainArgs) -> Result<ExitCode> {
    let engine = compile(&args.resources)?;
    let query = Query::from_value(explain_query(&args)?)?;
    let request = query.request(&engine)?;
    let explanation = engine.explain(&request);
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&explanation.to_json())?),
        Output::Text => print!("{explanation}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the same JSON object a query line would hold, so both commands share one parser.
fn explain_query(a: &ExplainArgs) -> Result<Value> {
    let raw_from = a.from_ip.is_some()
        || a.from_namespace.is_some()
        || !a.from_labels.is_empty()
        || a.principal.is_some();
    let from = match (&a.from, raw_from) {
        (Some(name), false) => json!(name),
        (None, true) => {
            let mut m = Map::new();
            if let Some(ip) = &a.from_ip {
                m.insert("ip".into(), json!(ip));
            }
            if let Some(ns) = &a.from_namespace {
                m.insert("namespace".into(), json!(ns));
            }
            if !a.from_labels.is_empty() {
                let labels: Map<String, Value> = a
                    .from_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                m.insert("labels".into(), Value::Object(labels));
            }
            if let Some(p) = &a.principal {
                m.insert("principal".into(), json!(p));
            }
            Value::Object(m)
        }
        (Some(_), true) => bail!(
            "--from names a Pod or Workload; do not combine it with --from-ip, --from-namespace, --from-label or --principal"
        ),
        (None, false) => {
            bail!("give the source: --from namespace/name, or --from-ip / --principal")
        }
    };
    let to = match (&a.to, &a.to_ip) {
        (Some(name), None) => json!(name),
        (None, Some(ip)) => json!({"ip": ip}),
        _ => bail!("give exactly one destination: --to namespace/name or --to-ip ADDRESS"),
    };
    let mut q =
        json!({"id": "explain", "from": from, "to": to, "port": a.port, "protocol": a.protocol});
    let is_http =
        a.method.is_some() || a.path.is_some() || a.host.is_some() || !a.headers.is_empty();
    if is_http {
        let headers: Map<String, Value> = a
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        q["http"] = json!({
            "method": a.method.as_deref().unwrap_or("GET"),
            "path": a.path.as_deref().unwrap_or("/"),
            "host": a.host,
            "headers": headers,
        });
    }
    if let Some(jwt) = &a.jwt {
        q["jwt"] = serde_json::from_str(jwt).context("--jwt: expected a JSON object")?;
    }
    Ok(q)
}

fn check(args: ResourceArgs) -> Result<ExitCode> {
    let resources = load_paths(&args.files).map_err(|e| anyhow::anyhow!("{e}"))?;
    let engine = compile_set(&args, &resources)?;
    let (np, pa, ap) = engine.policy_counts();
    let mut summary = format!(
        "ok: {} endpoints, {np} NetworkPolicies, {pa} PeerAuthentications, {ap} AuthorizationPolicies",
        engine.endpoint_count()
    );
    let wafs = resources.web_application_firewalls.len();
    if wafs > 0 {
        summary.push_str(&format!(", {wafs} WebApplicationFirewalls"));
    }
    println!("{summary}");
    // Overlapping firewalls load (one of them applies, by name), but are most likely a
    // mistake: say which one wins.
    for warning in waf::conflicts(&resources, &args.root_namespace) {
        eprintln!("warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}
