//! `bulkhead apply | get | delete | diff`: resources in the control plane's store.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use bulkhead_api::REST_PREFIX;
use bulkhead_api::rest::{Change, ObjectList, ObjectResult, WriteResponse};
use clap::Args;
use serde_json::Value;

use crate::batch::{self, CONTENT_TYPE};
use crate::client::{Client, Exit, decode, encode, with_query};
use crate::context::ConnArgs;
use crate::output::{self, Format, Table};

/// `apply` flags.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// Resource file or directory (recursive: *.yaml, *.yml, *.json); repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    files: Vec<PathBuf>,
    /// Run every check and report what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format (json and yaml print the server's WriteResponse).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
}

/// `diff` flags.
#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// Resource file or directory (recursive: *.yaml, *.yml, *.json); repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
}

/// `get` flags.
#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// Kind: NetworkPolicy, AuthorizationPolicy, PeerAuthentication, TrafficPolicy,
    /// WebApplicationFirewall, Service, Workload, Pod, Namespace (any case; plurals and
    /// netpol, ap, pa, tp, waf, svc, wl, po, ns work too).
    kind: String,
    /// Show only the object of this name.
    name: Option<String>,
    /// Namespace [default: default; ignored for Namespaces].
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Every namespace.
    #[arg(short = 'A', long, conflicts_with_all = ["namespace", "name"])]
    all_namespaces: bool,
    /// Label selector as kubectl writes it: app=web,tier!=db,env in (a,b),!legacy.
    #[arg(short = 'l', long, conflicts_with = "name")]
    selector: Option<String>,
    /// Output format: json and yaml print the object for a NAME, else
    /// {"revision": N, "items": [...]}.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
}

/// `delete` flags: files (`-f`), or a kind and a name.
#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// Kind of the object to delete (with NAME).
    #[arg(
        required_unless_present = "files",
        conflicts_with = "files",
        requires = "name"
    )]
    kind: Option<String>,
    /// Name of the object to delete.
    name: Option<String>,
    /// Delete the objects these files name (only kind and metadata count); repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    files: Vec<PathBuf>,
    /// Namespace of KIND NAME [default: default].
    #[arg(short = 'n', long, conflicts_with = "files")]
    namespace: Option<String>,
    /// Run every check and report what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output format (json and yaml print the server's WriteResponse).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    pub(crate) conn: ConnArgs,
}

/// The kind as the API spells it; unknown kinds go as typed, for the server to judge.
pub(crate) fn canonical_kind(kind: &str) -> String {
    bulkhead_api::kinds::canonical(kind).map_or_else(|| kind.to_owned(), str::to_owned)
}

/// The namespace query value: none for Namespaces and `-A`, else the flag or `default`.
fn namespace_param<'a>(kind: &str, namespace: Option<&'a str>, all: bool) -> Option<&'a str> {
    if kind == "Namespace" || all {
        None
    } else {
        Some(namespace.unwrap_or("default"))
    }
}

/// `POST /api/v1/apply`.
pub(crate) async fn apply(
    client: &Client,
    args: &ApplyArgs,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let body = batch::read_batch(&args.files)?;
    let path = write_path("apply", args.dry_run);
    let response: WriteResponse = client.post(&path, CONTENT_TYPE, body.into_bytes()).await?;
    print_write(out, args.output, &response)?;
    Ok(ExitCode::SUCCESS)
}

/// `POST /api/v1/diff`: exit 1 when applying would change something.
pub(crate) async fn diff(
    client: &Client,
    args: &DiffArgs,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let body = batch::read_batch(&args.files)?;
    let path = format!("{REST_PREFIX}/diff");
    let response: WriteResponse = client.post(&path, CONTENT_TYPE, body.into_bytes()).await?;
    let mut changed = false;
    for result in response
        .results
        .iter()
        .filter(|r| r.change != Change::Unchanged)
    {
        changed = true;
        if result.diff.is_empty() {
            writeln!(
                out,
                "{} {}",
                object_name(result),
                change_word(result.change)
            )?;
        } else {
            out.write_all(result.diff.as_bytes())?;
            if !result.diff.ends_with('\n') {
                writeln!(out)?;
            }
        }
    }
    Ok(if changed {
        Exit::Differences.into()
    } else {
        ExitCode::SUCCESS
    })
}

/// `POST /api/v1/delete` (files) or `DELETE /api/v1/resources/{kind}/{name}`.
pub(crate) async fn delete(
    client: &Client,
    args: &DeleteArgs,
    out: &mut dyn Write,
) -> Result<ExitCode> {
    let response: WriteResponse = match (&args.kind, &args.name) {
        (Some(kind), Some(name)) => {
            let bytes = client.delete(&delete_path(kind, name, args)).await?;
            decode(&bytes)?
        }
        _ => {
            let body = batch::read_batch(&args.files)?;
            let path = write_path("delete", args.dry_run);
            client.post(&path, CONTENT_TYPE, body.into_bytes()).await?
        }
    };
    print_write(out, args.output, &response)?;
    Ok(ExitCode::SUCCESS)
}

fn write_path(verb: &str, dry_run: bool) -> String {
    let path = format!("{REST_PREFIX}/{verb}");
    with_query(&path, &[("dryRun", dry_run.then_some("true"))])
}

fn delete_path(kind: &str, name: &str, args: &DeleteArgs) -> String {
    let kind = canonical_kind(kind);
    let path = format!("{REST_PREFIX}/resources/{}/{}", encode(&kind), encode(name));
    let namespace = namespace_param(&kind, args.namespace.as_deref(), false);
    let dry_run = args.dry_run.then_some("true");
    with_query(&path, &[("namespace", namespace), ("dryRun", dry_run)])
}

/// The request path of a `get`: one object, or a filtered list.
pub(crate) fn get_path(args: &GetArgs) -> String {
    let kind = canonical_kind(&args.kind);
    let namespace = namespace_param(&kind, args.namespace.as_deref(), args.all_namespaces);
    match &args.name {
        Some(name) => {
            let path = format!("{REST_PREFIX}/resources/{}/{}", encode(&kind), encode(name));
            with_query(&path, &[("namespace", namespace)])
        }
        None => with_query(
            &format!("{REST_PREFIX}/resources"),
            &[
                ("kind", Some(&kind)),
                ("namespace", namespace),
                ("labelSelector", args.selector.as_deref()),
            ],
        ),
    }
}

/// `GET /api/v1/resources…`.
pub(crate) async fn get(client: &Client, args: &GetArgs, out: &mut dyn Write) -> Result<ExitCode> {
    let list: ObjectList = client.get(&get_path(args)).await?;
    match (args.output, &args.name, list.items.first()) {
        (Format::Table, _, _) => {
            let now = output::now();
            let mut table = Table::new(&["KIND", "NAMESPACE", "NAME", "RESOURCEVERSION", "AGE"]);
            for item in &list.items {
                table.row(object_row(item, now));
            }
            table.print(out, "No resources found.")?;
        }
        (format, Some(_), Some(object)) => output::document(out, format, object)?,
        (format, _, _) => output::document(out, format, &list)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// KIND NAMESPACE NAME RESOURCEVERSION AGE of a stored object.
fn object_row(item: &Value, now: i64) -> Vec<String> {
    let meta = &item["metadata"];
    let namespace = scalar(&meta["namespace"]);
    vec![
        scalar(&item["kind"]),
        if namespace.is_empty() {
            "-".to_owned()
        } else {
            namespace
        },
        scalar(&meta["name"]),
        scalar(&meta["resourceVersion"]),
        output::age(meta["creationTimestamp"].as_str(), now),
    ]
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `Kind/namespace/name`, or `Kind/name` for objects without a namespace.
pub(crate) fn object_name(result: &ObjectResult) -> String {
    match &result.namespace {
        Some(ns) => format!("{}/{ns}/{}", result.kind, result.name),
        None => format!("{}/{}", result.kind, result.name),
    }
}

fn change_word(change: Change) -> &'static str {
    match change {
        Change::Created => "created",
        Change::Updated => "updated",
        Change::Unchanged => "unchanged",
        Change::Deleted => "deleted",
    }
}

/// One line per object: `Kind/ns/name created (resourceVersion 7)`.
fn print_write(out: &mut dyn Write, format: Format, response: &WriteResponse) -> Result<()> {
    if format != Format::Table {
        return output::document(out, format, response);
    }
    let suffix = if response.dry_run { " (dry run)" } else { "" };
    for result in &response.results {
        writeln!(
            out,
            "{} {} (resourceVersion {}){suffix}",
            object_name(result),
            change_word(result.change),
            result.resource_version
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Get {
        #[command(flatten)]
        args: GetArgs,
    }

    fn get(args: &[&str]) -> String {
        let parsed = Get::try_parse_from(std::iter::once("get").chain(args.iter().copied()));
        get_path(&parsed.unwrap().args)
    }

    #[test]
    fn selector_and_namespace_flags_become_query_parameters() {
        assert_eq!(
            get(&["netpol", "-n", "shop", "-l", "app=web,env in (a,b),!legacy"]),
            "/api/v1/resources?kind=NetworkPolicy&namespace=shop\
             &labelSelector=app%3Dweb%2Cenv%20in%20%28a%2Cb%29%2C%21legacy"
        );
        assert_eq!(
            get(&["pods"]),
            "/api/v1/resources?kind=Pod&namespace=default"
        );
        assert_eq!(get(&["Pod", "-A"]), "/api/v1/resources?kind=Pod");
        assert_eq!(get(&["ns"]), "/api/v1/resources?kind=Namespace");
        assert_eq!(
            get(&["AuthorizationPolicy", "a b", "-n", "x"]),
            "/api/v1/resources/AuthorizationPolicy/a%20b?namespace=x"
        );
        assert_eq!(
            get(&["Widget", "w"]),
            "/api/v1/resources/Widget/w?namespace=default"
        );
    }

    #[test]
    fn conflicting_get_flags_are_usage_errors() {
        let parse =
            |args: &[&str]| Get::try_parse_from(std::iter::once("get").chain(args.iter().copied()));
        assert!(parse(&["pods", "x", "-A"]).is_err());
        assert!(parse(&["pods", "-n", "a", "-A"]).is_err());
        assert!(parse(&["pods", "x", "-l", "a=b"]).is_err());
    }

    #[test]
    fn stored_objects_make_table_rows() {
        let item = serde_json::json!({"kind": "Namespace", "metadata": {"name": "shop",
            "resourceVersion": "7", "creationTimestamp": "2030-01-01T00:00:00Z"}});
        let now = output::parse_time("2030-01-01T00:05:00Z").unwrap();
        assert_eq!(
            object_row(&item, now),
            ["Namespace", "-", "shop", "7", "5m"]
        );
    }

    #[test]
    fn write_results_print_one_line_per_object() {
        let result = |kind: &str, ns: Option<&str>, change| ObjectResult {
            kind: kind.into(),
            namespace: ns.map(str::to_owned),
            name: "web".into(),
            change,
            resource_version: 4,
            diff: String::new(),
        };
        let response = WriteResponse {
            revision: 4,
            dry_run: true,
            results: vec![
                result("NetworkPolicy", Some("shop"), Change::Created),
                result("Namespace", None, Change::Unchanged),
            ],
        };
        let mut out = Vec::new();
        print_write(&mut out, Format::Table, &response).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NetworkPolicy/shop/web created (resourceVersion 4) (dry run)\n\
             Namespace/web unchanged (resourceVersion 4) (dry run)\n"
        );
    }
}
