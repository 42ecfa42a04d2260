//! The part of Go `text/template` (with sprig) that go-ftw applies to `data`.
//!
//! The CRS corpus uses only `{{ "1" | repeat N }}` (920400). Supported: text, comments,
//! trim markers, string and integer literals, pipelines and sprig's `repeat`. An unclosed
//! action is a Go parse error, and go-ftw then silently sends no body; we mirror that. Any
//! other action is reported as unsupported rather than guessed.

/// A template we do not know how to evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported Go template action {action:?}: only string literals and `repeat` are implemented"
)]
pub struct UnsupportedTemplate {
    /// The action text between `{{` and `}}`.
    pub action: String,
}

/// Evaluates `data` as go-ftw does; `Ok(None)` when Go would fail and go-ftw drops the body.
pub fn render(text: &str) -> Result<Option<String>, UnsupportedTemplate> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut literal = &rest[..start];
        if trim_next {
            literal = literal.trim_start();
        }
        let after_open = &rest[start + 2..];
        let Some(end) = after_open.find("}}") else {
            return Ok(None);
        };
        let mut action = &after_open[..end];
        // "{{- " and " -}}" trim the adjacent text's whitespace.
        if let Some(a) = action.strip_prefix("- ") {
            literal = literal.trim_end();
            action = a;
        }
        trim_next = false;
        if let Some(a) = action.strip_suffix(" -") {
            trim_next = true;
            action = a;
        }
        out.push_str(literal);
        out.push_str(&eval_action(action)?);
        rest = &after_open[end + 2..];
    }
    out.push_str(if trim_next { rest.trim_start() } else { rest });
    Ok(Some(out))
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Int(i64),
}

fn eval_action(action: &str) -> Result<String, UnsupportedTemplate> {
    let unsupported = || UnsupportedTemplate {
        action: action.to_owned(),
    };
    let trimmed = action.trim();
    if trimmed.starts_with("/*") && trimmed.ends_with("*/") {
        return Ok(String::new());
    }
    let mut piped: Option<Value> = None;
    for command in split_pipeline(trimmed).ok_or_else(unsupported)? {
        let mut args = tokenize(command).ok_or_else(unsupported)?;
        if let Some(previous) = piped.take() {
            args.push(Token::Lit(previous));
        }
        piped = Some(eval_command(args).ok_or_else(unsupported)?);
    }
    match piped {
        Some(Value::Str(s)) => Ok(s),
        Some(Value::Int(i)) => Ok(i.to_string()),
        None => Err(unsupported()),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Lit(Value),
}

fn eval_command(args: Vec<Token>) -> Option<Value> {
    match args.as_slice() {
        [Token::Lit(value)] => Some(value.clone()),
        [
            Token::Ident(f),
            Token::Lit(Value::Int(n)),
            Token::Lit(Value::Str(s)),
        ] if f == "repeat" => Some(Value::Str(s.repeat(usize::try_from(*n).unwrap_or(0)))),
        _ => None,
    }
}

/// Splits on `|` outside string literals.
fn split_pipeline(action: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in action.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '"' || c == '`' => quote = Some(c),
            None if c == '|' => {
                parts.push(action[start..i].trim());
                start = i + 1;
            }
            None => {}
        }
    }
    if quote.is_some() {
        return None;
    }
    parts.push(action[start..].trim());
    parts.iter().all(|p| !p.is_empty()).then_some(parts)
}

fn tokenize(command: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = command.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            tokens.push(Token::Lit(Value::Str(quoted(&mut chars)?)));
        } else if c == '`' {
            chars.next();
            let raw: String = chars.by_ref().take_while(|&c| c != '`').collect();
            tokens.push(Token::Lit(Value::Str(raw)));
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| !c.is_whitespace()) {
                word.push(c);
                chars.next();
            }
            tokens.push(match word.parse::<i64>() {
                Ok(n) => Token::Lit(Value::Int(n)),
                Err(_) if word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    Token::Ident(word)
                }
                Err(_) => return None,
            });
        }
    }
    Some(tokens)
}

/// A Go interpreted string literal after its opening quote (common escapes only).
fn quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    let mut out = String::new();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => out.push(match chars.next()? {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '\\' => '\\',
                '"' => '"',
                _ => return None,
            }),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn repeat_in_pipeline_and_call_form() {
        assert_eq!(
            render("a\n{{ \"1\" | repeat 5 }}\nb"),
            Ok(Some("a\n11111\nb".into()))
        );
        assert_eq!(render("{{repeat 3 \"ab\"}}"), Ok(Some("ababab".into())));
        assert_eq!(render("x {{- \"y\" -}} z"), Ok(Some("xyz".into())));
        assert_eq!(render("{{/* note */}}k"), Ok(Some("k".into())));
    }

    #[test]
    fn plain_text_and_lone_braces() {
        assert_eq!(render("a}}b{c"), Ok(Some("a}}b{c".into())));
        assert_eq!(
            render("{\"a\":{\"b\":1}}"),
            Ok(Some("{\"a\":{\"b\":1}}".into()))
        );
    }

    #[test]
    fn unclosed_action_drops_body() {
        assert_eq!(render("var=test{{${sleep(12)}"), Ok(None));
    }

    #[test]
    fn unknown_actions_are_reported() {
        assert!(render("{{ upper \"a\" }}").is_err());
        assert!(render("{{ .Foo }}").is_err());
        assert!(render("{{}}").is_err());
    }

    proptest! {
        #[test]
        fn text_without_braces_is_unchanged(text in "[^{]*") {
            prop_assert_eq!(render(&text), Ok(Some(text.clone())));
        }

        #[test]
        fn never_panics(text in ".{0,64}") {
            let _ = render(&text);
        }
    }
}
