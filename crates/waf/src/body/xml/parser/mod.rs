//! The XML 1.0 well-formedness parser building an [`XmlDoc`] in document order. It is
//! iterative (no recursion on element nesting); entity replacement texts are read through a
//! stack of inputs.

use std::rc::Rc;

mod tags;

use super::chars::{decode, is_name_char, is_name_start, is_space, is_xml_char};
use super::dtd::{self, Dtd, Entity};
use super::{Kind, Node, XmlDoc};

/// libxml2's element nesting limit without `XML_PARSE_HUGE`.
const MAX_DEPTH: usize = 256;

type R<T> = Result<T, String>;

/// Parses `body`; returns the (possibly partial) document and the first error.
pub(super) fn parse(body: &[u8]) -> (XmlDoc, Option<String>) {
    let (text, encoding_error) = decode(body);
    if text.is_empty() && encoding_error.is_some() {
        return (XmlDoc::default(), encoding_error);
    }
    let budget = 1_000_000 + 10 * text.len();
    let mut p = Parser {
        inputs: vec![Input {
            text: Rc::from(text.as_str()),
            pos: 0,
            entity: None,
            depth: 0,
        }],
        doc: XmlDoc::default(),
        open: Vec::new(),
        scopes: Vec::new(),
        dtd: Dtd::default(),
        standalone: false,
        budget,
    };
    let result = p.document();
    // Elements left open by an error still get a subtree range, as libxml2's partial tree
    // keeps them.
    for id in p.open.iter().map(|o| o.id).collect::<Vec<_>>() {
        p.finish_element(id);
    }
    // An encoding error is what stopped the parse when the valid prefix parsed fine so far.
    (p.doc, encoding_error.or(result.err()))
}

/// Text being read: the document, or an entity's replacement text.
struct Input {
    text: Rc<str>,
    pos: usize,
    entity: Option<String>,
    /// Open elements when the entity was entered (its content must be balanced).
    depth: usize,
}

/// An element whose end tag has not been read yet.
struct Open {
    id: usize,
    raw: String,
}

pub(super) struct Parser {
    inputs: Vec<Input>,
    doc: XmlDoc,
    open: Vec<Open>,
    /// Namespace bindings declared by each open element.
    scopes: Vec<Vec<(String, String)>>,
    dtd: Dtd,
    standalone: bool,
    /// Entity expansion allowance (guards against "billion laughs").
    budget: usize,
}

impl Parser {
    fn in_entity(&self) -> bool {
        self.inputs.len() > 1
    }

    fn input(&self) -> &Input {
        &self.inputs[self.inputs.len() - 1]
    }

    fn input_mut(&mut self) -> &mut Input {
        let last = self.inputs.len() - 1;
        &mut self.inputs[last]
    }

    fn rest(&self) -> &str {
        let i = self.input();
        &i.text[i.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn advance(&mut self, n: usize) {
        self.input_mut().pos += n;
    }

    fn eat(&mut self, lit: &str) -> bool {
        let ok = self.rest().starts_with(lit);
        if ok {
            self.advance(lit.len());
        }
        ok
    }

    fn space(&mut self) -> bool {
        let rest = self.rest();
        let n = rest.len() - rest.trim_start_matches(is_space).len();
        self.advance(n);
        n > 0
    }

    fn name(&mut self) -> R<String> {
        let rest = self.rest();
        match rest.chars().next() {
            Some(c) if is_name_start(c) => {}
            _ => return Err("xmlParseName: invalid name".to_owned()),
        }
        let end = rest
            .char_indices()
            .find(|(_, c)| !is_name_char(*c))
            .map_or(rest.len(), |(i, _)| i);
        let name = rest[..end].to_owned();
        self.advance(end);
        Ok(name)
    }

    /// Consumes up to and including `end`, returning what came before it.
    fn until(&mut self, end: &str, what: &str) -> R<String> {
        let rest = self.rest();
        let Some(i) = rest.find(end) else {
            return Err(format!("{what} not terminated"));
        };
        let body = rest[..i].to_owned();
        if !body.chars().all(is_xml_char) {
            return Err(format!("invalid xmlChar value in {what}"));
        }
        self.advance(i + end.len());
        Ok(body)
    }

    fn document(&mut self) -> R<()> {
        if self.rest().is_empty() {
            return Err("Document is empty".to_owned());
        }
        self.xml_declaration()?;
        self.misc()?;
        if self.eat("<!DOCTYPE") {
            let (dtd, end) = dtd::parse_doctype(&self.input().text.clone(), self.input().pos)?;
            self.dtd = dtd;
            // A standalone document may not rely on undeclared (external) entities.
            self.dtd.incomplete &= !self.standalone;
            self.input_mut().pos = end;
            self.misc()?;
        }
        if self.peek() != Some('<') {
            return Err(if self.rest().is_empty() {
                "Document is empty"
            } else {
                "Start tag expected, '<' not found"
            }
            .to_owned());
        }
        self.advance(1);
        self.start_tag()?;
        self.content()?;
        self.misc()?;
        if !self.rest().is_empty() {
            return Err("Extra content at the end of the document".to_owned());
        }
        Ok(())
    }

    fn xml_declaration(&mut self) -> R<()> {
        let rest = self.rest();
        if !(rest.starts_with("<?xml") && rest[5..].starts_with(is_space)) {
            return Ok(());
        }
        self.advance(5);
        let decl = self.until("?>", "XML declaration")?;
        let mut attrs = pseudo_attributes(&decl)
            .ok_or("Malformed declaration expecting version")?
            .into_iter();
        match attrs.next() {
            Some(("version", v)) if is_version(v) => {}
            _ => return Err("Malformed declaration expecting version".to_owned()),
        }
        let mut next = attrs.next();
        if let Some(("encoding", e)) = next {
            let mut cs = e.chars();
            if !cs.next().is_some_and(|c| c.is_ascii_alphabetic())
                || !cs.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err("Invalid XML encoding name".to_owned());
            }
            next = attrs.next();
        }
        if let Some(("standalone", s)) = next {
            if s != "yes" && s != "no" {
                return Err("standalone accepts only 'yes' or 'no'".to_owned());
            }
            self.standalone = s == "yes";
            next = attrs.next();
        }
        match next {
            None => Ok(()),
            Some(_) => Err("parsing XML declaration: '?>' expected".to_owned()),
        }
    }

    /// Comments, processing instructions and whitespace between top-level constructs.
    fn misc(&mut self) -> R<()> {
        loop {
            self.space();
            if self.eat("<!--") {
                self.comment()?;
            } else if self.eat("<?") {
                self.processing_instruction()?;
            } else {
                return Ok(());
            }
        }
    }

    fn comment(&mut self) -> R<()> {
        self.until("--", "Comment")?;
        if !self.eat(">") {
            return Err("Double hyphen within comment".to_owned());
        }
        Ok(())
    }

    fn processing_instruction(&mut self) -> R<()> {
        let target = self.name()?;
        if target.eq_ignore_ascii_case("xml") {
            return Err("XML declaration allowed only at the start of the document".to_owned());
        }
        if self.eat("?>") {
            return Ok(());
        }
        if !self.space() {
            return Err("ParsePI: PI space expected".to_owned());
        }
        self.until("?>", "PI").map(|_| ())
    }

    /// Element content up to the end tag of the root element.
    fn content(&mut self) -> R<()> {
        while !self.open.is_empty() {
            if self.rest().is_empty() {
                self.leave_input()?;
                continue;
            }
            if self.eat("</") {
                self.end_tag()?;
            } else if self.eat("<!--") {
                self.comment()?;
            } else if self.eat("<![CDATA[") {
                let text = self.until("]]>", "CData section")?;
                self.push_text(&text);
            } else if self.eat("<?") {
                self.processing_instruction()?;
            } else if self.eat("<") {
                self.start_tag()?;
            } else if self.eat("&") {
                self.reference_in_content()?;
            } else {
                self.char_data()?;
            }
        }
        Ok(())
    }

    fn leave_input(&mut self) -> R<()> {
        let Some(name) = self.input().entity.clone() else {
            let tag = self.open.last().map(|o| o.raw.clone()).unwrap_or_default();
            return Err(format!("Premature end of data in tag {tag}"));
        };
        if self.open.len() != self.input().depth {
            return Err(format!("Entity '{name}' is not well balanced"));
        }
        self.inputs.pop();
        Ok(())
    }

    fn char_data(&mut self) -> R<()> {
        let rest = self.rest();
        let end = rest.find(['<', '&']).unwrap_or(rest.len());
        if end == rest.len() && end < 2 && !self.in_entity() {
            // libxml2 drops a lone trailing byte of character data in an unfinished document.
            self.advance(end);
            return Ok(());
        }
        let text = rest[..end].to_owned();
        if text.contains("]]>") {
            return Err("Sequence ']]>' not allowed in content".to_owned());
        }
        if !text.chars().all(is_xml_char) {
            return Err("PCDATA invalid Char value".to_owned());
        }
        self.advance(end);
        self.push_text(&text);
        Ok(())
    }

    /// Appends character data, merging it with an immediately preceding text node.
    fn push_text(&mut self, text: &str) {
        let parent = self.open.last().map(|o| o.id);
        let in_entity = self.in_entity();
        if let Some(Node {
            kind: Kind::Text(prev),
            parent: p,
            in_entity: e,
        }) = self.doc.nodes.last_mut()
            && *p == parent
            && *e == in_entity
        {
            prev.push_str(text);
            return;
        }
        let id = self.doc.nodes.len();
        self.doc.nodes.push(Node {
            kind: Kind::Text(text.to_owned()),
            parent,
            in_entity,
        });
        if let Some(Kind::Element(e)) = parent.map(|p| &mut self.doc.nodes[p].kind) {
            e.children.push(id);
        }
    }

    fn reference_in_content(&mut self) -> R<()> {
        if self.eat("#") {
            let body = self.until(";", "CharRef")?;
            let c = dtd::char_ref_value(&body)?;
            self.push_text(c.encode_utf8(&mut [0; 4]));
            return Ok(());
        }
        let name = self.name()?;
        if !self.eat(";") {
            return Err("EntityRef: expecting ';'".to_owned());
        }
        if let Some(c) = predefined(&name) {
            self.push_text(c);
            return Ok(());
        }
        match self.dtd.entities.get(&name).cloned() {
            Some(Entity::Internal(text)) => self.enter_entity(name, text),
            Some(Entity::External) => Ok(()),
            Some(Entity::Unparsed) => Err(format!("Entity reference to unparsed entity {name}")),
            None if self.dtd.incomplete => Ok(()),
            None => Err(format!("Entity '{name}' not defined")),
        }
    }

    fn enter_entity(&mut self, name: String, text: String) -> R<()> {
        if self
            .inputs
            .iter()
            .any(|i| i.entity.as_deref() == Some(name.as_str()))
        {
            return Err("Detected an entity reference loop".to_owned());
        }
        self.budget = self
            .budget
            .checked_sub(text.len())
            .ok_or("Maximum entity amplification factor exceeded")?;
        let depth = self.open.len();
        self.inputs.push(Input {
            text: Rc::from(text.as_str()),
            pos: 0,
            entity: Some(name),
            depth,
        });
        Ok(())
    }

    fn finish_element(&mut self, id: usize) {
        let end = self.doc.nodes.len();
        if let Kind::Element(e) = &mut self.doc.nodes[id].kind {
            e.end = end;
        }
    }
}

fn predefined(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

fn is_version(v: &str) -> bool {
    v.strip_prefix("1.")
        .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
}

/// `name="value"` pairs of an XML declaration, in order; `None` if malformed.
fn pseudo_attributes(decl: &str) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut rest = decl.trim_start_matches(is_space);
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let name = rest[..eq].trim_end_matches(is_space);
        let after = rest[eq + 1..].trim_start_matches(is_space);
        let quote = after.chars().next().filter(|q| *q == '"' || *q == '\'')?;
        let close = after[1..].find(quote)?;
        out.push((name, &after[1..=close]));
        let next = &after[close + 2..];
        let trimmed = next.trim_start_matches(is_space);
        if !trimmed.is_empty() && trimmed.len() == next.len() {
            return None;
        }
        rest = trimmed;
    }
    Some(out)
}
