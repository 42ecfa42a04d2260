//! Loading files and directories: recursion, order, filtering, and errors naming each path.

use std::fs;
use std::path::{Path, PathBuf};

use bulkhead_resources::{DiagnosticKind, Loader, load_paths};

const POD_X: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: x\n";
const NS_X: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, text).unwrap();
    path
}

#[test]
fn directories_are_read_recursively_in_sorted_order() {
    let dir = tempfile::tempdir().unwrap();
    let pod = |name: &str| POD_X.replace("name: a", &format!("name: {name}"));
    write(dir.path(), "b.yaml", &pod("b"));
    write(dir.path(), "a/z.yml", &pod("az"));
    write(
        dir.path(),
        "c.json",
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"}}"#,
    );
    write(dir.path(), "README.md", "not a resource");
    write(dir.path(), ".hidden.yaml", "not: [valid");
    write(dir.path(), "..data/x.yaml", "not: [valid");
    let set = load_paths(&[dir.path().to_owned()]).unwrap();
    let names: Vec<&str> = set.pods.iter().map(|p| p.metadata.name.as_str()).collect();
    assert_eq!(names, ["az", "b", "c"]);
}

#[test]
fn directory_errors_name_each_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ok.yaml", POD_X);
    let bad = write(
        dir.path(),
        "sub/bad.yaml",
        &format!("{NS_X}---\nkind: Pod\n"),
    );
    let dup = write(dir.path(), "sub/dup.yaml", POD_X);
    let mut loader = Loader::new();
    let err = loader.add_path(dir.path()).unwrap_err();
    assert_eq!(err.diagnostics().len(), 1);
    let d = &err.diagnostics()[0];
    assert_eq!(d.origin, bad.display().to_string());
    assert_eq!((d.document, d.line), (Some(2), Some(6)));
    let err = loader.finish().unwrap_err();
    let origins: Vec<&str> = err
        .diagnostics()
        .iter()
        .map(|d| d.origin.as_str())
        .collect();
    assert_eq!(
        origins,
        [bad.display().to_string(), dup.display().to_string()]
    );
    assert!(err.to_string().contains(&format!(
        "{}: document 1 (line 1)",
        dir.path().join("ok.yaml").display()
    )));
}

#[test]
fn unreadable_paths() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let mut loader = Loader::new();
    let err = loader.add_path(&missing).unwrap_err();
    assert!(err.is_io());
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read: ", missing.display()))
    );
    let err = loader.finish().unwrap_err();
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::Io);

    // load_paths goes on after a failing path and reports every path's problems.
    let bad = write(dir.path(), "bad.yaml", "kind: Pod\n");
    let err = load_paths(&[missing.clone(), bad.clone()]).unwrap_err();
    let origins: Vec<&str> = err
        .diagnostics()
        .iter()
        .map(|d| d.origin.as_str())
        .collect();
    assert_eq!(
        origins,
        [missing.display().to_string(), bad.display().to_string()]
    );
}

#[test]
fn explicit_files_load_whatever_their_extension() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "resources", NS_X);
    assert_eq!(load_paths(&[path]).unwrap().namespaces.len(), 1);
}
