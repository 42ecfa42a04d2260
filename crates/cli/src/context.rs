//! Context files (like a kubeconfig: where the control plane is, which CA signed its
//! certificate, which token to send) and the flags that find or override them.
//!
//! ```yaml
//! apiVersion: bulkhead.dev/v1alpha1
//! kind: Context
//! metadata: {name: local}
//! server: https://127.0.0.1:15010
//! caFile: tls/ca.pem      # relative to this file; or caData: "-----BEGIN CERTIFICATE-----..."
//! token: bht_...          # or tokenFile: path (relative to this file)
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use bulkhead_api::API_VERSION;
use bulkhead_resources::field::{FieldError, FieldPath};
use bulkhead_resources::load::decode_single_with;
use clap::Args;
use serde::Deserialize;

use crate::client::{Endpoint, Failure};

/// The `kind` of a context file.
const KIND: &str = "Context";

/// Flags every control-plane command takes: where the server is and who is asking.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ConnArgs {
    /// Context file: server, CA and token [default: ~/.config/bulkhead/context.yaml].
    #[arg(long, value_name = "FILE", env = "BULKHEAD_CONTEXT")]
    pub(crate) context: Option<PathBuf>,
    /// Control plane URL (https://HOST:PORT); overrides the context's `server`.
    #[arg(long, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// Bearer token; overrides the context's `token` and `tokenFile`.
    #[arg(long, env = "BULKHEAD_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// PEM file of the CA that signed the server's certificate; overrides the context's.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
}

/// A context file as written (strict: unknown fields are errors).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ContextFile {
    #[allow(dead_code, reason = "checked by decode_single_with")]
    api_version: String,
    #[allow(dead_code, reason = "checked by decode_single_with")]
    kind: String,
    #[allow(dead_code, reason = "names the context for people; not used")]
    metadata: ContextMeta,
    server: String,
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    ca_data: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_file: Option<String>,
}

/// `metadata` of a context: only its name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextMeta {
    #[allow(dead_code, reason = "required so contexts can be told apart; not used")]
    name: String,
}

/// A loaded context, its relative paths resolved against the file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Context {
    /// The file it was read from.
    pub(crate) path: PathBuf,
    /// The server URL.
    pub(crate) server: String,
    /// Where the CA comes from.
    pub(crate) ca: Option<Source>,
    /// Where the token comes from.
    pub(crate) token: Option<Source>,
}

/// A secret or certificate given inline or as a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The value itself.
    Inline(String),
    /// A file holding it (absolute, or relative to the working directory).
    File(PathBuf),
}

/// What a command needs to reach the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `https://HOST:PORT`.
    pub(crate) server: String,
    /// PEM certificates the server's chain must lead to.
    pub(crate) ca_pem: Vec<u8>,
    /// Where `ca_pem` came from, for messages.
    pub(crate) ca_origin: String,
    /// The bearer token.
    pub(crate) token: String,
}

/// `~/.config/bulkhead/context.yaml`, when there is a home directory.
pub(crate) fn default_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".config/bulkhead/context.yaml"))
}

/// Reads and checks a context file; errors name the file, line and field.
pub(crate) fn load(path: &Path) -> Result<Context, Failure> {
    let text = fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read context file {}: {e}", path.display())))?;
    let origin = path.display().to_string();
    let file: ContextFile =
        decode_single_with(&text, &origin, API_VERSION, KIND, check).map_err(|e| {
            let mut lines = e.to_string().lines().map(str::to_owned).collect::<Vec<_>>();
            let first = lines.remove(0);
            Failure::usage(first).with_details(lines)
        })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let relative = |p: String| Source::File(dir.join(p));
    Ok(Context {
        path: path.to_owned(),
        server: file.server,
        ca: file
            .ca_data
            .map(Source::Inline)
            .or(file.ca_file.map(relative)),
        token: file
            .token
            .map(Source::Inline)
            .or(file.token_file.map(relative)),
    })
}

/// The rules serde cannot express: one source each for CA and token, an https server.
fn check(file: &ContextFile) -> Vec<FieldError> {
    let root = FieldPath::root();
    let mut problems = Vec::new();
    if let Err(e) = Endpoint::parse(&file.server) {
        problems.push(FieldError::new(root.key("server"), e));
    }
    if file.ca_file.is_some() && file.ca_data.is_some() {
        let message = "set either `caFile` or `caData`, not both";
        problems.push(FieldError::new(root.key("caData"), message));
    }
    if file.token.is_some() && file.token_file.is_some() {
        let message = "set either `token` or `tokenFile`, not both";
        problems.push(FieldError::new(root.key("tokenFile"), message));
    }
    for (key, value) in [("token", &file.token), ("tokenFile", &file.token_file)] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            problems.push(FieldError::new(root.key(key), "must not be empty"));
        }
    }
    problems
}

impl ConnArgs {
    /// Flags first, then the context file (flag, `$BULKHEAD_CONTEXT`, default path).
    pub(crate) fn resolve(&self) -> Result<Target, Failure> {
        self.resolve_with(default_path())
    }

    /// [`ConnArgs::resolve`] with the default context path given, for tests.
    pub(crate) fn resolve_with(&self, default: Option<PathBuf>) -> Result<Target, Failure> {
        let token = self.token.clone().filter(|t| !t.is_empty());
        let complete = self.server.is_some() && token.is_some() && self.ca_file.is_some();
        let context = match (&self.context, default) {
            (Some(path), _) => Some(load(path)?),
            // Flags that say everything need no file; a broken default file is no reason
            // to fail then.
            (None, _) if complete => None,
            (None, Some(path)) if path.exists() => Some(load(&path)?),
            (None, _) => None,
        };
        let ctx = context.as_ref();
        let server = self
            .server
            .clone()
            .or_else(|| ctx.map(|c| c.server.clone()))
            .ok_or_else(|| Failure::usage(format!("no server: {NO_CONTEXT}")))?;
        let (ca_pem, ca_origin) = match (&self.ca_file, ctx) {
            (Some(file), _) => (read(file, "CA file")?, file.display().to_string()),
            (None, Some(c)) => ca_of(c)?,
            (None, None) => return Err(Failure::usage(format!("no CA: {NO_CONTEXT}"))),
        };
        let token = match (token, ctx) {
            (Some(token), _) => token,
            (None, Some(c)) => token_of(c)?,
            (None, None) => return Err(Failure::usage(format!("no token: {NO_CONTEXT}"))),
        };
        Ok(Target {
            server,
            ca_pem,
            ca_origin,
            token,
        })
    }
}

const NO_CONTEXT: &str = "no context file (give --context FILE, set BULKHEAD_CONTEXT, or \
    create ~/.config/bulkhead/context.yaml), and no --server, --ca-file and --token flags";

fn ca_of(ctx: &Context) -> Result<(Vec<u8>, String), Failure> {
    let file = ctx.path.display();
    match &ctx.ca {
        Some(Source::Inline(pem)) => Ok((pem.clone().into_bytes(), format!("{file}: caData"))),
        Some(Source::File(path)) => Ok((read(path, "CA file")?, path.display().to_string())),
        None => Err(Failure::usage(format!(
            "no CA: {file} sets neither `caFile` nor `caData`, and --ca-file is not given"
        ))),
    }
}

fn token_of(ctx: &Context) -> Result<String, Failure> {
    let file = ctx.path.display();
    match &ctx.token {
        Some(Source::Inline(token)) => Ok(token.trim().to_owned()),
        Some(Source::File(path)) => {
            let bytes = read(path, "token file")?;
            let token = String::from_utf8_lossy(&bytes).trim().to_owned();
            if token.is_empty() {
                return Err(Failure::usage(format!(
                    "token file {} is empty",
                    path.display()
                )));
            }
            Ok(token)
        }
        None => Err(Failure::usage(format!(
            "no token: {file} sets neither `token` nor `tokenFile`, and neither --token nor \
             BULKHEAD_TOKEN is set"
        ))),
    }
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read {what} {}: {e}", path.display())))
}

/// Writes a context file for `server` with the API CA inline (`caData`) and `token`,
/// atomically and with mode 0600 (it holds a secret); creates missing parent directories.
/// `bulkhead control --context-out` calls this.
pub(crate) fn write_context(path: &Path, server: &str, ca_pem: &str, token: &str) -> Result<()> {
    let text = render(server, ca_pem, token)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    bulkhead_identity::ca::write_private_file(path, text.as_bytes())
        .with_context(|| format!("cannot write context file {}", path.display()))
}

/// The text of a context file; strings are quoted as JSON, which YAML reads as is.
fn render(server: &str, ca_pem: &str, token: &str) -> Result<String> {
    let mut text = format!(
        "apiVersion: {API_VERSION}\nkind: {KIND}\nmetadata:\n  name: default\nserver: {}\n\
         token: {}\ncaData: |\n",
        serde_json::to_string(server)?,
        serde_json::to_string(token)?,
    );
    for line in ca_pem.trim().lines() {
        let line = line.trim_end();
        if !line.is_empty() {
            text.push_str("  ");
            text.push_str(line);
        }
        text.push('\n');
    }
    Ok(text)
}

#[cfg(test)]
mod tests;
