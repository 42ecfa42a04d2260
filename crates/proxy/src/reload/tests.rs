use std::fs;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use super::unix_seconds;
use super::watch_files::Fingerprint;

#[test]
fn unchanged_files_are_not_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    fs::write(&file, "a: 1\n").unwrap();
    let fp = Fingerprint::of(&[file.clone(), dir.path().join("missing.pem")]);
    assert!(!fp.changed());
}

#[test]
fn edits_replacements_and_appearing_files_are_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.yaml");
    fs::write(&file, "a: 1\n").unwrap();
    let fp = Fingerprint::of(std::slice::from_ref(&file));
    fs::write(&file, "a: 12\n").unwrap();
    assert!(fp.changed());

    // Same size, new inode (an atomic rename, as `bulkhead cert issue` writes).
    let fp = Fingerprint::of(std::slice::from_ref(&file));
    let tmp = dir.path().join("tmp");
    fs::write(&tmp, "a: 13\n").unwrap();
    fs::rename(&tmp, &file).unwrap();
    assert!(fp.changed());

    let missing = dir.path().join("later.pem");
    let fp = Fingerprint::of(std::slice::from_ref(&missing));
    fs::write(&missing, "x").unwrap();
    assert!(fp.changed());
}

#[test]
fn directories_are_expanded_to_resource_files() {
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().join("policies");
    fs::create_dir_all(root.join("nested")).unwrap();
    let fp = Fingerprint::of(std::slice::from_ref(&root));
    // Hidden names and other extensions are not read by the loader, so not watched.
    fs::write(root.join(".swp.yaml"), "x").unwrap();
    fs::write(root.join("notes.txt"), "x").unwrap();
    assert!(!fp.changed());
    fs::write(root.join("nested/np.yml"), "x").unwrap();
    assert!(fp.changed());
}

#[test]
fn extended_and_retained_choose_the_watched_roots() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fs::write(&a, "1").unwrap();
    fs::write(&b, "1").unwrap();
    let fp = Fingerprint::of(std::slice::from_ref(&a)).extended(&[a.clone(), b.clone()]);
    assert_eq!(fp.roots(), [a.clone(), b.clone()]);
    let only_a = fp.retained(std::slice::from_ref(&a));
    assert_eq!(only_a.roots(), std::slice::from_ref(&a));
    fs::write(&b, "22").unwrap();
    assert!(fp.changed());
    assert!(!only_a.changed());
}

#[test]
fn unix_seconds_handles_both_sides_of_the_epoch() {
    assert_eq!(unix_seconds(UNIX_EPOCH + Duration::from_secs(5)), 5);
    assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), -5);
}
