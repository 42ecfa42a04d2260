//! `<!DOCTYPE …>` parsing: the external identifier and the internal subset's entity
//! declarations (everything else in the subset is checked for shape and skipped, as a
//! non-validating parser does).

use std::collections::HashMap;

use super::chars::{is_name_char, is_name_start, is_space, is_xml_char};

/// A general entity declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Entity {
    /// Replacement text (character references already expanded).
    Internal(String),
    /// `SYSTEM`/`PUBLIC` parsed entity: never loaded, so it expands to nothing.
    External,
    /// `NDATA` entity: may not be referenced from content.
    Unparsed,
}

/// What the document type declaration told us.
#[derive(Debug, Clone, Default)]
pub(super) struct Dtd {
    pub(super) entities: HashMap<String, Entity>,
    /// An external subset or parameter-entity references were seen: undeclared entities are
    /// then tolerated (libxml2 only warns).
    pub(super) incomplete: bool,
}

/// A cursor over the main document text.
struct Cur<'a> {
    s: &'a str,
    pos: usize,
}

type R<T> = Result<T, String>;

impl<'a> Cur<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.rest().starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn space(&mut self) -> bool {
        let n = self.rest().len() - self.rest().trim_start_matches(is_space).len();
        self.pos += n;
        n > 0
    }

    fn name(&mut self) -> R<&'a str> {
        let rest = self.rest();
        let mut chars = rest.char_indices();
        match chars.next() {
            Some((_, c)) if is_name_start(c) => {}
            _ => return Err("xmlParseName: invalid name in DTD".to_owned()),
        }
        let end = chars
            .find(|(_, c)| !is_name_char(*c))
            .map_or(rest.len(), |(i, _)| i);
        self.pos += end;
        Ok(&rest[..end])
    }

    fn quoted(&mut self) -> R<&'a str> {
        let q = match self.peek() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err("String literal expected in DTD".to_owned()),
        };
        self.pos += 1;
        let rest = self.rest();
        let end = rest.find(q).ok_or("Unfinished string literal in DTD")?;
        self.pos += end + 1;
        let lit = &rest[..end];
        if !lit.chars().all(is_xml_char) {
            return Err("invalid character in DTD literal".to_owned());
        }
        Ok(lit)
    }

    /// `SYSTEM lit` or `PUBLIC lit lit`; returns whether one was present.
    fn external_id(&mut self) -> R<bool> {
        if self.eat("SYSTEM") {
            self.required_space("SYSTEM")?;
            self.quoted()?;
            Ok(true)
        } else if self.eat("PUBLIC") {
            self.required_space("PUBLIC")?;
            self.quoted()?;
            self.required_space("the Public Identifier")?;
            self.quoted()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn required_space(&mut self, after: &str) -> R<()> {
        if self.space() {
            Ok(())
        } else {
            Err(format!("Space required after {after}"))
        }
    }
}

/// Parses a document type declaration starting right after `<!DOCTYPE`; returns what it
/// declared and the position after its closing `>`.
pub(super) fn parse_doctype(text: &str, pos: usize) -> R<(Dtd, usize)> {
    let mut c = Cur { s: text, pos };
    let mut dtd = Dtd::default();
    // libxml2 does not insist on the space after `DOCTYPE`.
    c.space();
    c.name()?;
    c.space();
    dtd.incomplete = c.external_id()?;
    c.space();
    if c.eat("[") {
        internal_subset(&mut c, &mut dtd)?;
        c.space();
    }
    if !c.eat(">") {
        return Err("DOCTYPE improperly terminated".to_owned());
    }
    Ok((dtd, c.pos))
}

fn internal_subset(c: &mut Cur<'_>, dtd: &mut Dtd) -> R<()> {
    loop {
        c.space();
        if c.eat("]") {
            return Ok(());
        }
        if c.eat("<!ENTITY") {
            entity_decl(c, dtd)?;
        } else if c.eat("<!--") {
            let end = c.rest().find("--").ok_or("Comment not terminated in DTD")?;
            c.pos += end + 2;
            if !c.eat(">") {
                return Err("Double hyphen within comment in DTD".to_owned());
            }
        } else if c.eat("<?") {
            let end = c.rest().find("?>").ok_or("PI not terminated in DTD")?;
            c.pos += end + 2;
        } else if c.eat("%") {
            c.name()?;
            if !c.eat(";") {
                return Err("PEReference: expecting ';'".to_owned());
            }
            dtd.incomplete = true;
        } else if c.eat("<!ELEMENT") || c.eat("<!ATTLIST") || c.eat("<!NOTATION") {
            skip_declaration(c)?;
        } else {
            return Err("internal error: DTD subset not terminated or bad declaration".to_owned());
        }
    }
}

/// Skips to the `>` ending a declaration, stepping over quoted literals.
fn skip_declaration(c: &mut Cur<'_>) -> R<()> {
    while let Some(ch) = c.peek() {
        match ch {
            '>' => {
                c.pos += 1;
                return Ok(());
            }
            '"' | '\'' => {
                c.quoted()?;
            }
            _ => c.pos += ch.len_utf8(),
        }
    }
    Err("markup declaration not terminated".to_owned())
}

fn entity_decl(c: &mut Cur<'_>, dtd: &mut Dtd) -> R<()> {
    if !c.space() {
        return Err("Space required after '<!ENTITY'".to_owned());
    }
    let parameter = c.eat("%");
    if parameter && !c.space() {
        return Err("Space required after '%'".to_owned());
    }
    let name = c.name()?.to_owned();
    if !c.space() {
        return Err("Space required after the entity name".to_owned());
    }
    let entity = if c.external_id()? {
        c.space();
        if c.eat("NDATA") {
            c.space();
            c.name()?;
            Entity::Unparsed
        } else {
            Entity::External
        }
    } else {
        let lit = c.quoted()?;
        if lit.contains('%') {
            return Err("PEReferences forbidden in internal subset".to_owned());
        }
        Entity::Internal(expand_char_refs(lit)?)
    };
    c.space();
    if !c.eat(">") {
        return Err("EntityDecl: entity not terminated".to_owned());
    }
    if !parameter {
        // The first declaration of an entity is binding.
        dtd.entities.entry(name).or_insert(entity);
    }
    Ok(())
}

/// Character references in an entity value are replaced when it is declared; entity
/// references are checked for shape and kept for expansion at use.
fn expand_char_refs(lit: &str) -> R<String> {
    let mut out = String::with_capacity(lit.len());
    let mut rest = lit;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(';')
            .ok_or("EntityValue: '&' not followed by a reference")?;
        let body = &after[..end];
        if let Some(num) = body.strip_prefix('#') {
            out.push(char_ref_value(num)?);
        } else if body.starts_with(is_name_start) && body.chars().all(is_name_char) {
            out.push('&');
            out.push_str(body);
            out.push(';');
        } else {
            return Err("EntityValue: '&' not followed by a reference".to_owned());
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The character of a reference body (`x41` or `65`), which must be an XML `Char`.
pub(super) fn char_ref_value(body: &str) -> R<char> {
    let parsed = match body.strip_prefix('x') {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u32::from_str_radix(hex, 16).ok()
        }
        None if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) => {
            body.parse::<u32>().ok()
        }
        _ => None,
    };
    parsed
        .and_then(char::from_u32)
        .filter(|c| is_xml_char(*c))
        .ok_or_else(|| format!("xmlParseCharRef: invalid xmlChar value {body}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_and_external_ids() {
        let text = "<!DOCTYPE r SYSTEM \"r.dtd\" [ <!ENTITY a \"x&#65;&b;\"> <!ENTITY a \"dup\"> \
                    <!ENTITY e SYSTEM \"file:///etc/passwd\"> <!ENTITY u SYSTEM \"u\" NDATA gif> \
                    <!ELEMENT r (#PCDATA)> <!ATTLIST r x CDATA \">\"> <!-- c --> <?pi x?> ]>rest";
        let (dtd, end) = parse_doctype(text, 9).expect("doctype");
        assert_eq!(&text[end..], "rest");
        assert!(dtd.incomplete);
        assert_eq!(
            dtd.entities.get("a"),
            Some(&Entity::Internal("xA&b;".to_owned()))
        );
        assert_eq!(dtd.entities.get("e"), Some(&Entity::External));
        assert_eq!(dtd.entities.get("u"), Some(&Entity::Unparsed));
    }

    #[test]
    fn malformed_doctypes() {
        assert!(parse_doctype("<!DOCTYPE r [ <!ENTITY a \"x\" ]>", 9).is_err());
        assert!(parse_doctype("<!DOCTYPE r [ <!FOO> ]>", 9).is_err());
        assert!(parse_doctype("<!DOCTYPE r [ <!ENTITY a \"%p;\"> ]>", 9).is_err());
        assert!(parse_doctype("<!DOCTYPE>", 9).is_err());
        assert!(parse_doctype("<!DOCTYPE r [<!ENTITY a \"x & y\">]>", 9).is_err());
        assert!(!parse_doctype("<!DOCTYPE r>", 9).expect("ok").0.incomplete);
    }

    #[test]
    fn char_refs() {
        assert_eq!(char_ref_value("x41"), Ok('A'));
        assert_eq!(char_ref_value("10"), Ok('\n'));
        assert!(char_ref_value("0").is_err());
        assert!(char_ref_value("x").is_err());
        assert!(char_ref_value("xD800").is_err());
    }
}
