//! JSON request bodies, named as libmodsecurity 3's `request_body_processor/json.cc` does.
//!
//! Naming: the top-level container is `json`; an object member is `<path>.<key>`
//! (`json.user.name`); an array element is `<path>.array_<n>` with `n` counting from 0
//! (`json.ids.array_0`, nested: `json.m.array_0.array_1`, object inside an array:
//! `json.a.array_0.k`); an empty key is `empty-key`; a bare top-level scalar is `json`.
//! Values: strings decoded, numbers as written, `true`/`false`, and `null` as an empty value.
//! Empty containers produce nothing.

use super::Arg;
use super::json_lex::{Lexed, Lexer, Token};

/// Result of [`parse_json_limited`]: the arguments produced before any error, as
/// libmodsecurity keeps them (it adds each one while yajl streams).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonOutcome {
    /// Arguments in document order.
    pub args: Vec<Arg>,
    /// `REQBODY_ERROR_MSG` when parsing failed (`JSON parsing error: …`).
    pub error: Option<String>,
}

/// Parses a JSON body into arguments named as libmodsecurity 3 does (see the module docs).
///
/// `max_depth` is `SecRequestBodyJsonDepthLimit` (libmodsecurity's default is 10000): more
/// nested containers than that is an error. An empty body is not an error (libmodsecurity only
/// flags errors for non-empty bodies). Errors carry the whole `REQBODY_ERROR_MSG`, e.g.
/// `JSON parsing error: parse error: premature EOF\n` (yajl's message keeps its newline).
pub fn parse_json(body: &[u8], max_depth: usize) -> Result<Vec<Arg>, String> {
    let out = parse_json_limited(body, max_depth, usize::MAX);
    match out.error {
        Some(e) => Err(e),
        None => Ok(out.args),
    }
}

/// Like [`parse_json`], keeping the arguments produced before an error, and cancelling the
/// parse (as libmodsecurity does when `SecArgumentsLimit` is reached) once `max_args`
/// arguments have been produced and another one is due.
pub fn parse_json_limited(body: &[u8], max_depth: usize, max_args: usize) -> JsonOutcome {
    if body.is_empty() {
        return JsonOutcome::default();
    }
    let mut text = Vec::with_capacity(body.len() + 1);
    text.extend_from_slice(body);
    // yajl_complete_parse feeds one space so that a trailing number is terminated.
    text.push(b' ');
    let mut parser = Parser {
        lexer: Lexer::new(&text),
        states: vec![State::Start],
        namer: Namer {
            max_depth,
            max_args,
            ..Namer::default()
        },
    };
    let error = parser.run().err().map(|e| e.message());
    JsonOutcome {
        args: parser.namer.args,
        error,
    }
}

/// Why parsing stopped.
enum Failure {
    Lexical(&'static str),
    Parse(&'static str),
    Cancelled { depth: bool },
}

impl Failure {
    /// The message as libmodsecurity stores it in `REQBODY_ERROR_MSG`.
    fn message(&self) -> String {
        let inner = match self {
            Failure::Lexical(m) => format!("lexical error: {m}\n"),
            Failure::Parse(m) => format!("parse error: {m}\n"),
            Failure::Cancelled { depth } => {
                let mut s =
                    "parse error: client cancelled parse via callback return value\n".to_owned();
                if *depth {
                    s.push_str(". Parsing depth limit exceeded");
                }
                s
            }
        };
        format!("JSON parsing error: {inner}")
    }
}

/// yajl's parser states (one per nesting level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    ParseComplete,
    MapStart,
    MapNeedKey,
    MapSep,
    MapNeedVal,
    MapGotVal,
    ArrayStart,
    ArrayNeedVal,
    ArrayGotVal,
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    states: Vec<State>,
    namer: Namer,
}

impl Parser<'_> {
    fn run(&mut self) -> Result<(), Failure> {
        loop {
            let state = *self.states.last().unwrap_or(&State::ParseComplete);
            let lexed = self.lexer.lex();
            let tok = match lexed {
                Lexed::Eof => return self.finish(state),
                // After a complete value anything but whitespace is garbage, even a lexical error.
                Lexed::Error(_) if state == State::ParseComplete => {
                    return Err(Failure::Parse("trailing garbage"));
                }
                Lexed::Error(m) => return Err(Failure::Lexical(m)),
                Lexed::Token(t) => t,
            };
            match state {
                State::ParseComplete => return Err(Failure::Parse("trailing garbage")),
                State::Start | State::MapNeedVal | State::ArrayStart | State::ArrayNeedVal => {
                    self.value(state, tok)?
                }
                State::MapStart | State::MapNeedKey => self.map_key(state, tok)?,
                State::MapSep => match tok {
                    Token::Colon => self.set(State::MapNeedVal),
                    _ => {
                        return Err(Failure::Parse(
                            "object key and value must be separated by a colon (':')",
                        ));
                    }
                },
                State::MapGotVal => match tok {
                    Token::RightBrace => self.close(),
                    Token::Comma => self.set(State::MapNeedKey),
                    _ => {
                        return Err(Failure::Parse(
                            "after key and value, inside map, I expect ',' or '}'",
                        ));
                    }
                },
                State::ArrayGotVal => match tok {
                    Token::RightBracket => self.close(),
                    Token::Comma => self.set(State::ArrayNeedVal),
                    _ => return Err(Failure::Parse("after array element, I expect ',' or ']'")),
                },
            }
        }
    }

    /// End of input: only a complete document is accepted (`yajl_do_finish`).
    fn finish(&self, state: State) -> Result<(), Failure> {
        if state == State::ParseComplete {
            Ok(())
        } else {
            Err(Failure::Parse("premature EOF"))
        }
    }

    fn set(&mut self, state: State) {
        if let Some(top) = self.states.last_mut() {
            *top = state;
        }
    }

    fn close(&mut self) {
        self.namer.end_container();
        self.states.pop();
    }

    fn value(&mut self, state: State, tok: Token) -> Result<(), Failure> {
        let push = match tok {
            Token::Str(s) => self.namer.scalar(s).map(|()| None),
            Token::Number(n) => self.namer.scalar(n).map(|()| None),
            Token::Bool(b) => self
                .namer
                .scalar(if b {
                    b"true".to_vec()
                } else {
                    b"false".to_vec()
                })
                .map(|()| None),
            Token::Null => self.namer.scalar(Vec::new()).map(|()| None),
            Token::LeftBrace => self
                .namer
                .start_container(false)
                .map(|()| Some(State::MapStart)),
            Token::LeftBracket => self
                .namer
                .start_container(true)
                .map(|()| Some(State::ArrayStart)),
            Token::RightBracket if state == State::ArrayStart => {
                self.close();
                return Ok(());
            }
            _ => return Err(Failure::Parse("unallowed token at this point in JSON text")),
        }?;
        self.set(match state {
            State::Start => State::ParseComplete,
            State::MapNeedVal => State::MapGotVal,
            _ => State::ArrayGotVal,
        });
        if let Some(s) = push {
            self.states.push(s);
        }
        Ok(())
    }

    fn map_key(&mut self, state: State, tok: Token) -> Result<(), Failure> {
        match tok {
            Token::Str(key) => {
                self.namer.current_key = key;
                self.set(State::MapSep);
                Ok(())
            }
            Token::RightBrace if state == State::MapStart => {
                self.close();
                Ok(())
            }
            _ => Err(Failure::Parse("invalid object key (must be a string)")),
        }
    }
}

/// One open container and the name it was opened under.
#[derive(Debug)]
struct Container {
    name: Vec<u8>,
    array: bool,
    elements: usize,
}

/// Builds argument names the way libmodsecurity's JSON class does.
#[derive(Debug, Default)]
struct Namer {
    containers: Vec<Container>,
    current_key: Vec<u8>,
    max_depth: usize,
    max_args: usize,
    args: Vec<Arg>,
}

impl Namer {
    /// `getCurrentKey`: `json` at top level, otherwise the pending object key (consumed),
    /// with an empty key named `empty-key` unless the parent is an array.
    fn take_key(&mut self) -> Vec<u8> {
        let Some(parent) = self.containers.last() else {
            return b"json".to_vec();
        };
        if self.current_key.is_empty() {
            return if parent.array {
                Vec::new()
            } else {
                b"empty-key".to_vec()
            };
        }
        std::mem::take(&mut self.current_key)
    }

    fn scalar(&mut self, value: Vec<u8>) -> Result<(), Failure> {
        let mut name = Vec::new();
        for c in &self.containers {
            name.extend_from_slice(&c.name);
            if c.array {
                name.extend_from_slice(format!(".array_{}", c.elements).as_bytes());
            } else {
                name.push(b'.');
            }
        }
        match self.containers.last_mut() {
            Some(parent) if parent.array => parent.elements += 1,
            _ => {
                let key = self.take_key();
                name.extend_from_slice(&key);
            }
        }
        if self.args.len() >= self.max_args {
            return Err(Failure::Cancelled { depth: false });
        }
        self.args.push(Arg { name, value });
        Ok(())
    }

    fn start_container(&mut self, array: bool) -> Result<(), Failure> {
        let name = self.take_key();
        self.containers.push(Container {
            name,
            array,
            elements: 0,
        });
        if self.containers.len() > self.max_depth {
            return Err(Failure::Cancelled { depth: true });
        }
        Ok(())
    }

    fn end_container(&mut self) {
        self.containers.pop();
        if let Some(parent) = self.containers.last_mut()
            && parent.array
        {
            parent.elements += 1;
        }
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
