use std::fs;

use super::*;
use crate::client::Exit;

const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

fn context_file(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("context.yaml");
    let text = format!(
        "apiVersion: bulkhead.dev/v1alpha1\nkind: Context\nmetadata: {{name: local}}\n{body}"
    );
    fs::write(&path, text).unwrap();
    path
}

fn with_context(path: &Path) -> ConnArgs {
    ConnArgs {
        context: Some(path.to_owned()),
        ..ConnArgs::default()
    }
}

#[test]
fn a_valid_context_resolves_relative_files_against_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("tls")).unwrap();
    fs::write(dir.path().join("tls/ca.pem"), CA).unwrap();
    fs::write(dir.path().join("token"), "bht_abc\n").unwrap();
    let body = "server: https://127.0.0.1:15010\ncaFile: tls/ca.pem\ntokenFile: token\n";
    let path = context_file(dir.path(), body);
    let ctx = load(&path).unwrap();
    assert_eq!(ctx.ca, Some(Source::File(dir.path().join("tls/ca.pem"))));
    let target = with_context(&path).resolve_with(None).unwrap();
    assert_eq!(target.server, "https://127.0.0.1:15010");
    assert_eq!(target.ca_pem, CA.as_bytes());
    assert_eq!(
        target.ca_origin,
        dir.path().join("tls/ca.pem").display().to_string()
    );
    assert_eq!(target.token, "bht_abc");
}

#[test]
fn unknown_fields_are_errors_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let body = "server: https://127.0.0.1:15010\ntoken: bht_x\ncaData: x\ninsecure: true\n";
    let path = context_file(dir.path(), body);
    let failure = load(&path).unwrap_err();
    assert_eq!(failure.exit, Exit::Usage);
    let message = failure.message;
    assert!(
        message.starts_with(&format!("{}: document 1 (line 7)", path.display())),
        "{message}"
    );
    assert!(message.contains("insecure"), "{message}");
}

#[test]
fn both_sources_of_one_thing_and_plain_http_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let body = "server: http://127.0.0.1:15010\ntoken: t\ntokenFile: f\ncaData: x\n";
    let failure = load(&context_file(dir.path(), body)).unwrap_err();
    let all = failure.to_string();
    assert!(
        all.contains("server: `http://127.0.0.1:15010`: expected an https:// URL"),
        "{all}"
    );
    assert!(
        all.contains("tokenFile: set either `token` or `tokenFile`, not both"),
        "{all}"
    );
}

#[test]
fn a_missing_token_is_an_error_naming_the_context_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = context_file(dir.path(), "server: https://localhost:15010\ncaData: x\n");
    let failure = with_context(&path).resolve_with(None).unwrap_err();
    assert_eq!(failure.exit, Exit::Usage);
    assert_eq!(
        failure.message,
        format!(
            "no token: {} sets neither `token` nor `tokenFile`, and neither --token nor \
             BULKHEAD_TOKEN is set",
            path.display()
        )
    );
    // A token given by flag (or BULKHEAD_TOKEN) fills the gap.
    let args = ConnArgs {
        token: Some("bht_flag".into()),
        ..with_context(&path)
    };
    assert_eq!(args.resolve_with(None).unwrap().token, "bht_flag");
}

#[test]
fn flags_override_the_context_and_a_complete_set_needs_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    fs::write(&ca, CA).unwrap();
    let broken_default = dir.path().join("default.yaml");
    fs::write(&broken_default, "not: a context").unwrap();
    let args = ConnArgs {
        context: None,
        server: Some("https://[::1]:9443".into()),
        token: Some("bht_t".into()),
        ca_file: Some(ca.clone()),
    };
    let target = args.resolve_with(Some(broken_default.clone())).unwrap();
    assert_eq!(target.server, "https://[::1]:9443");
    assert_eq!(target.ca_origin, ca.display().to_string());
    // Without the CA flag the default file is read, and its problems reported.
    let partial = ConnArgs {
        ca_file: None,
        ..args
    };
    let failure = partial.resolve_with(Some(broken_default)).unwrap_err();
    assert!(
        failure.message.contains("default.yaml"),
        "{}",
        failure.message
    );
    let failure = ConnArgs::default().resolve_with(None).unwrap_err();
    assert!(
        failure.message.starts_with("no server: no context file"),
        "{}",
        failure.message
    );
}

#[test]
fn written_contexts_load_back_and_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/context.yaml");
    let pem = format!("{CA}{CA}");
    write_context(&path, "https://127.0.0.1:15010", &pem, "bht_secret").unwrap();
    let target = with_context(&path).resolve_with(None).unwrap();
    assert_eq!(target.server, "https://127.0.0.1:15010");
    assert_eq!(target.token, "bht_secret");
    assert_eq!(String::from_utf8(target.ca_pem).unwrap(), pem);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Rewriting replaces the file.
    write_context(&path, "https://localhost:1", CA, "bht_other").unwrap();
    assert_eq!(
        with_context(&path).resolve_with(None).unwrap().token,
        "bht_other"
    );
}
