//! `bulkhead cert init | issue | inspect | bundle`: operator tooling for identity without a
//! control plane. The flags, output files and exit codes are fixed by DESIGN.md §3 because
//! scripts rely on them; the work happens in `bulkhead_identity::ca`.

mod inspect;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use bulkhead_identity::ca::{
    self, Activation, CaDir, CertSummary, CertificateAuthority, IssuedSvid, TtlCap,
};
use bulkhead_identity::{SpiffeId, TrustDomain};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

/// Certificate subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CertCommand {
    /// Create a CA directory (self-signed root, or your own CA), or rotate its root.
    Init(InitArgs),
    /// Issue an X.509-SVID: writes DIR/cert.pem, DIR/key.pem (0600) and DIR/bundle.pem.
    Issue(IssueArgs),
    /// Show what a PEM certificate chain is and whether it is a valid X.509-SVID.
    Inspect(inspect::InspectArgs),
    /// Show or change the trust bundle of a CA directory.
    Bundle(BundleArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// `cert init` flags.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Trust domain the CA issues for, e.g. cluster.local.
    #[arg(long, value_name = "TD", required_unless_present = "rotate")]
    trust_domain: Option<String>,
    /// Directory to create the CA in (refused if it already holds one).
    #[arg(
        long,
        value_name = "CA_DIR",
        required_unless_present = "rotate",
        conflicts_with = "rotate"
    )]
    out: Option<PathBuf>,
    /// Bring your own CA: its certificate, then its issuers up to the root (PEM).
    #[arg(long, value_name = "FILE", requires = "from_key")]
    from_cert: Option<PathBuf>,
    /// The CA's unencrypted ECDSA P-256 key (PEM, PKCS#8 or SEC1).
    #[arg(long, value_name = "FILE", requires = "from_cert")]
    from_key: Option<PathBuf>,
    /// Longest leaf TTL the CA will grant (90s, 30m, 24h, 7d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "7d")]
    max_ttl: Duration,
    /// Root rotation, step 1: stage a new CA in CA_DIR/next and add its root to
    /// CA_DIR/bundle.pem, while the current CA keeps signing.
    #[arg(long, requires = "ca")]
    rotate: bool,
    /// Root rotation, step 2 (with --rotate): make the staged CA the signing CA.
    #[arg(long, requires = "rotate", conflicts_with_all = ["from_cert", "from_key"])]
    activate: bool,
    /// The CA directory to rotate.
    #[arg(long, value_name = "CA_DIR", requires = "rotate")]
    ca: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
}

/// `cert issue` flags.
#[derive(Debug, Args)]
pub(crate) struct IssueArgs {
    /// The CA directory.
    #[arg(long, value_name = "CA_DIR")]
    ca: PathBuf,
    /// The SPIFFE ID, spiffe://TD/ns/NS/sa/SA.
    #[arg(long)]
    id: String,
    /// Directory for cert.pem, key.pem and bundle.pem (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Leaf lifetime (90s, 30m, 24h, 7d); capped by the CA's maximum.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "24h")]
    ttl: Duration,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
}

/// `cert bundle` flags.
#[derive(Debug, Args)]
pub(crate) struct BundleArgs {
    /// The CA directory.
    #[arg(long, value_name = "CA_DIR")]
    ca: PathBuf,
    /// Add the root certificate(s) of a PEM file; repeatable.
    #[arg(long, value_name = "ROOT.pem")]
    add: Vec<PathBuf>,
    /// Remove the root certificate(s) of a PEM file (e.g. a retired ca.pem); repeatable.
    #[arg(long, value_name = "ROOT.pem")]
    remove: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    output: Output,
}

/// Runs one `cert` subcommand; the exit code is the command's verdict.
pub(crate) fn run(cmd: CertCommand) -> Result<ExitCode> {
    // The clock is read once, here, and passed down.
    let now = SystemTime::now();
    match cmd {
        CertCommand::Init(args) if args.rotate => rotate(&args, now),
        CertCommand::Init(args) => init(&args, now),
        CertCommand::Issue(args) => issue(&args, now),
        CertCommand::Inspect(args) => inspect::run(&args, now),
        CertCommand::Bundle(args) => bundle(&args),
    }
}

/// `90s`, `30m`, `24h`, `7d`, or several run together (`1h30m`).
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration `{s}`: expected e.g. 90s, 30m, 24h or 7d");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        digits.clear();
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

fn trust_domain(s: &str) -> Result<TrustDomain> {
    TrustDomain::new(s).map_err(|e| anyhow!("invalid trust domain `{s}`: {e}"))
}

/// A new CA from `--from-cert/--from-key`, or a generated root.
fn new_ca(
    args: &InitArgs,
    td: &TrustDomain,
    max_ttl: Duration,
    now: SystemTime,
) -> Result<CertificateAuthority> {
    Ok(match (&args.from_cert, &args.from_key) {
        (Some(cert), Some(key)) => CertificateAuthority::from_files(cert, key, td, now, max_ttl)?,
        _ => CertificateAuthority::init_with_max_ttl(td, now, max_ttl)?,
    })
}

fn init(args: &InitArgs, now: SystemTime) -> Result<ExitCode> {
    let (Some(td), Some(out)) = (&args.trust_domain, &args.out) else {
        bail!("--trust-domain and --out are required");
    };
    let td = trust_domain(td)?;
    let ca = new_ca(args, &td, args.max_ttl, now)?;
    ca.save(out)?;
    let root = ca::describe(ca.root())?;
    let signing = ca::describe(ca.certificate())?;
    match args.output {
        Output::Json => print_json(&json!({
            "ca_dir": out.display().to_string(),
            "trust_domain": td.as_str(),
            "max_leaf_ttl": ca::format_duration(ca.max_leaf_ttl()),
            "signing_ca": summary_json(&signing),
            "root": summary_json(&root),
            "files": [ca::CA_CERT_FILE, ca::CA_KEY_FILE, ca::BUNDLE_FILE, ca::METADATA_FILE],
        }))?,
        Output::Text => {
            println!("created CA for trust domain {td} in {}", out.display());
            print_summary("signing CA", &signing);
            if ca.chain().len() > 1 {
                print_summary("root", &root);
            }
            println!("  max leaf TTL  {}", ca::format_duration(ca.max_leaf_ttl()));
            println!(
                "  files         {0}/ca.pem, {0}/ca-key.pem (0600), {0}/bundle.pem, {0}/ca.json",
                out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `init --rotate [--activate] --ca CA_DIR`.
fn rotate(args: &InitArgs, now: SystemTime) -> Result<ExitCode> {
    let Some(path) = &args.ca else {
        bail!("--rotate needs --ca CA_DIR");
    };
    let dir = CaDir::new(path);
    let settings = dir.settings()?;
    if let Some(td) = &args.trust_domain
        && trust_domain(td)? != settings.trust_domain
    {
        bail!(
            "{}: CA is for trust domain {}, not {td}",
            path.display(),
            settings.trust_domain
        );
    }
    if args.activate {
        let activation = dir.activate_rotation(now)?;
        return report_activation(path, &activation, args.output);
    }
    let next = new_ca(args, &settings.trust_domain, settings.max_leaf_ttl, now)?;
    let added = dir.stage_rotation(&next)?;
    let root = ca::describe(next.root())?;
    match args.output {
        Output::Json => print_json(&json!({
            "ca_dir": path.display().to_string(),
            "staged": summary_json(&ca::describe(next.certificate())?),
            "root": summary_json(&root),
            "root_added_to_bundle": added,
        }))?,
        Output::Text => {
            println!("staged a new CA in {}", path.join(ca::NEXT_DIR).display());
            print_summary("new root", &root);
            if added {
                println!(
                    "  its root was added to {}",
                    path.join(ca::BUNDLE_FILE).display()
                );
            }
            println!("the current CA keeps signing. Next: give every workload the new bundle.pem");
            println!("(re-issue, or copy it), then run:");
            println!(
                "  bulkhead cert init --rotate --activate --ca {}",
                path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report_activation(path: &Path, activation: &Activation, output: Output) -> Result<ExitCode> {
    let retired_pem = activation.retired.join(ca::CA_CERT_FILE);
    match output {
        Output::Json => print_json(&json!({
            "ca_dir": path.display().to_string(),
            "signing_root": summary_json(&ca::describe(&activation.new_root)?),
            "retired": activation.retired.display().to_string(),
            "old_root": summary_json(&ca::describe(&activation.old_root)?),
            "root_changed": activation.root_changed(),
        }))?,
        Output::Text => {
            println!(
                "the staged CA now signs; the old CA moved to {}",
                activation.retired.display()
            );
            print_summary("signing root", &ca::describe(&activation.new_root)?);
            if activation.root_changed() {
                println!(
                    "both roots stay in bundle.pem. Next: re-issue every SVID; once none from"
                );
                println!("the old root is left (at most the max leaf TTL), drop it:");
                println!(
                    "  bulkhead cert bundle --ca {} --remove {}",
                    path.display(),
                    retired_pem.display()
                );
            } else {
                println!("the root did not change: re-issue every SVID; nothing to remove.");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn issue(args: &IssueArgs, now: SystemTime) -> Result<ExitCode> {
    // The ID is checked before anything is read, so a bad ID always reports itself.
    let id =
        SpiffeId::parse(&args.id).map_err(|e| anyhow!("invalid SPIFFE ID `{}`: {e}", args.id))?;
    let ca = CertificateAuthority::load(&args.ca, None, now)?;
    let (svid, key) = ca.issue_with_new_key(&id, Some(args.ttl), now)?;
    ca::write_svid_files(&args.out, &svid, &key, ca.bundle())?;
    let cap = svid.ttl_cap().map(|cap| match cap {
        TtlCap::MaxLeafTtl => format!(
            "TTL capped to the CA's maximum of {}",
            ca::format_duration(ca.max_leaf_ttl())
        ),
        TtlCap::IssuerExpiry => "TTL capped: the CA expires first".to_owned(),
        _ => "TTL capped".to_owned(),
    });
    match args.output {
        Output::Json => print_json(&issued_json(&args.out, &svid, cap.as_deref()))?,
        Output::Text => print_issued(&args.out, &svid, cap.as_deref(), now),
    }
    Ok(ExitCode::SUCCESS)
}

fn issued_json(out: &Path, svid: &IssuedSvid, cap: Option<&str>) -> Value {
    let file = |name: &str| out.join(name).display().to_string();
    json!({
        "spiffe_id": svid.id().as_str(),
        "serial": svid.serial(),
        "not_before": ca::rfc3339(svid.not_before()),
        "not_after": ca::rfc3339(svid.not_after()),
        "ttl_capped": cap,
        "files": {
            "cert": file(ca::SVID_CERT_FILE),
            "key": file(ca::SVID_KEY_FILE),
            "bundle": file(ca::SVID_BUNDLE_FILE),
        },
    })
}

fn print_issued(out: &Path, svid: &IssuedSvid, cap: Option<&str>, now: SystemTime) {
    // Whole seconds, as in the certificate.
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let lifetime = svid
        .not_after()
        .duration_since(std::time::UNIX_EPOCH + Duration::from_secs(now))
        .unwrap_or_default();
    println!("issued {}", svid.id());
    println!("  serial      {}", svid.serial());
    println!("  not before  {}", ca::rfc3339(svid.not_before()));
    println!(
        "  not after   {} (in {})",
        ca::rfc3339(svid.not_after()),
        ca::format_duration(lifetime)
    );
    if let Some(cap) = cap {
        println!("  note        {cap}");
    }
    println!(
        "  chain       leaf + {} intermediate(s)",
        svid.chain().len() - 1
    );
    println!(
        "  files       {0}/cert.pem, {0}/key.pem (0600), {0}/bundle.pem",
        out.display()
    );
}

fn bundle(args: &BundleArgs) -> Result<ExitCode> {
    let dir = CaDir::new(&args.ca);
    let mut changes = Vec::new();
    for path in &args.add {
        let pem = read(path)?;
        for (root, added) in dir.add_roots(&pem, &path.display().to_string())? {
            changes.push((if added { "added" } else { "already present" }, root));
        }
    }
    for path in &args.remove {
        let pem = read(path)?;
        for root in dir.remove_roots(&pem, &path.display().to_string())? {
            changes.push(("removed", root));
        }
    }
    let roots = dir.bundle()?;
    let signing = dir.signing_root()?;
    let staged = dir.staged_root()?;
    let mut listed = Vec::new();
    for root in roots.roots() {
        let role = if *root == signing {
            "signing"
        } else if staged.as_ref() == Some(root) {
            "staged"
        } else {
            "trusted"
        };
        listed.push((role, ca::describe(root)?));
    }
    match args.output {
        Output::Json => print_json(&json!({
            "ca_dir": args.ca.display().to_string(),
            "trust_domain": roots.trust_domain().as_str(),
            "changes": changes.iter().map(|(what, root)| json!({"change": what, "root": summary_json(root)})).collect::<Vec<_>>(),
            "roots": listed.iter().map(|(role, root)| {
                let mut v = summary_json(root);
                v["role"] = json!(role);
                v
            }).collect::<Vec<_>>(),
        }))?,
        Output::Text => {
            for (what, root) in &changes {
                println!("{what}: {} (sha256 {})", root.subject, root.sha256);
            }
            let bundle_path = args.ca.join(ca::BUNDLE_FILE);
            println!(
                "{}: {} root(s) for {}",
                bundle_path.display(),
                listed.len(),
                roots.trust_domain()
            );
            for (role, root) in &listed {
                println!("  [{role}] {}", root.subject);
                println!("    sha256 {}", root.sha256);
                println!(
                    "    valid  {} .. {}",
                    ca::rfc3339(root.not_before),
                    ca::rfc3339(root.not_after)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// A certificate summary as JSON, times in RFC 3339.
fn summary_json(s: &CertSummary) -> Value {
    json!({
        "subject": s.subject,
        "issuer": s.issuer,
        "serial": s.serial,
        "not_before": ca::rfc3339(s.not_before),
        "not_after": ca::rfc3339(s.not_after),
        "sha256": s.sha256,
        "key_type": s.key_type,
    })
}

fn print_summary(label: &str, s: &CertSummary) {
    println!("  {label:<13} {}", s.subject);
    println!("  {:<13} {}", "serial", s.serial);
    println!("  {:<13} {}", "valid until", ca::rfc3339(s.not_after));
    println!("  {:<13} {}", "sha256", s.sha256);
}

/// Pretty JSON on standard output.
fn print_json(v: &Value) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
