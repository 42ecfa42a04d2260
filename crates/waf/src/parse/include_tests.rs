//! `Include`, file errors and error locations, in a temporary directory.

use std::path::Path;

use anyhow::Result;

use super::ast::Directive;
use super::{ParseError, parse_file, parse_str};

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)?;
    Ok(())
}

/// The marker names of a parse, in order.
fn markers(directives: &[super::ast::Located]) -> Vec<String> {
    directives
        .iter()
        .filter_map(|d| match &d.directive {
            Directive::Marker(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn glob_include_in_sorted_order_relative_to_the_including_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write(
        dir.path(),
        "main.conf",
        "SecMarker start\nInclude conf/main2.conf\nSecMarker end\n",
    )?;
    write(dir.path(), "conf/main2.conf", "include \"rules/*.conf\"\n")?;
    write(dir.path(), "conf/rules/b.conf", "SecMarker b\n")?;
    write(dir.path(), "conf/rules/a.conf", "\n\nSecMarker a\n")?;
    write(
        dir.path(),
        "conf/rules/c.conf.example",
        "SecMarker not-included\n",
    )?;
    write(dir.path(), "conf/rules/.hidden.conf", "SecMarker hidden\n")?;
    let got = parse_file(&dir.path().join("main.conf"))?;
    assert_eq!(markers(&got), ["start", "a", "b", "end"]);
    let a = &got[1].at;
    assert!(a.file.ends_with("conf/rules/a.conf"), "{a}");
    assert_eq!(a.line, 3);
    assert!(got[0].at.file.ends_with("main.conf"));
    Ok(())
}

#[test]
fn include_from_a_string_uses_the_base_dir() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write(dir.path(), "x/one.conf", "SecMarker one\n")?;
    write(dir.path(), "x/two.conf", "SecMarker two\n")?;
    let got = parse_str("<config>", "Include x/*.conf\nSecMarker last", dir.path())?;
    assert_eq!(markers(&got), ["one", "two", "last"]);
    assert_eq!(&*got[2].at.file, "<config>");
    assert_eq!(got[2].at.line, 2);
    Ok(())
}

#[test]
fn glob_in_directory_components() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write(dir.path(), "d1/r.conf", "SecMarker d1\n")?;
    write(dir.path(), "d2/r.conf", "SecMarker d2\n")?;
    write(dir.path(), "d3/other.conf", "SecMarker d3\n")?;
    let got = parse_str("<config>", "Include d?/r.conf", dir.path())?;
    assert_eq!(markers(&got), ["d1", "d2"]);
    Ok(())
}

#[test]
fn include_cycle_is_an_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write(dir.path(), "a.conf", "SecMarker a\nInclude b.conf\n")?;
    write(dir.path(), "b.conf", "\nInclude a.conf\n")?;
    let err = parse_file(&dir.path().join("a.conf")).err();
    let Some(ParseError::Syntax { at, message }) = err else {
        panic!("{err:?}")
    };
    assert!(at.file.ends_with("b.conf") && at.line == 2, "{at}");
    assert!(message.starts_with("include cycle: "), "{message}");
    assert!(
        message.contains("a.conf includes ") && message.contains("b.conf includes "),
        "{message}"
    );
    // The same file twice, one after the other, is no cycle.
    write(dir.path(), "c.conf", "SecMarker c\n")?;
    let got = parse_str("<config>", "Include c.conf\nInclude ./c.conf", dir.path())?;
    assert_eq!(markers(&got), ["c", "c"]);
    Ok(())
}

#[test]
fn self_include_is_a_cycle() -> Result<()> {
    let dir = tempfile::tempdir()?;
    write(dir.path(), "s.conf", "Include ./s.conf\n")?;
    let err = parse_file(&dir.path().join("s.conf")).err();
    assert!(
        matches!(&err, Some(ParseError::Syntax { message, .. }) if message.contains("cycle")),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn missing_files_name_the_include_and_the_path() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let err = parse_str("<config>", "SecMarker x\nInclude missing.conf", dir.path()).err();
    let Some(ParseError::Include { at, path, .. }) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(at.line, 2);
    assert!(path.ends_with("missing.conf"));
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.starts_with("<config>:2: cannot read ") && text.contains("missing.conf"),
        "{text}"
    );

    let err = parse_str("<config>", "Include nothing/*.conf", dir.path()).err();
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("no file matches the pattern"), "{text}");

    let err = parse_file(&dir.path().join("absent.conf")).err();
    assert!(matches!(err, Some(ParseError::Read { .. })), "{err:?}");
    Ok(())
}

#[test]
fn syntax_errors_name_file_and_line() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let text =
        "# comment\nSecMarker ok\n\nSecRule ARGS \"@rx a \\\n   b\" \\\n    \"id:1,msg:'x\"\n";
    write(dir.path(), "bad.conf", text)?;
    let err = parse_file(&dir.path().join("bad.conf")).err();
    let text = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.contains("bad.conf:4: unterminated quoted string"),
        "{text}"
    );

    let cases = [
        ("SecMarker a\nFooBar x", "<t>:2: unknown directive `FooBar`"),
        (
            "SecRule ARGS",
            "<t>:1: SecRule needs a variable list and an operator",
        ),
        (
            "\n\nSecRule ARGS \"@rx x",
            "<t>:3: unterminated quoted string",
        ),
        ("SecRule $ARGS x", "<t>:1: unknown variable prefix `$`"),
        (
            "SecAction \"id:1,msg:'a'b\"",
            "<t>:1: expected `,` after the value of action `msg`",
        ),
        (
            "SecRule ARGS \"@ x\"",
            "<t>:1: expected an operator name after `@`",
        ),
    ];
    for (input, want) in cases {
        let got = parse_str("<t>", input, dir.path())
            .err()
            .map(|e| e.to_string());
        assert!(
            got.as_deref().is_some_and(|g| g.starts_with(want)),
            "{input:?}: {got:?}"
        );
    }
    Ok(())
}
