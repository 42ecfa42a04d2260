//! Start tags, attributes, namespaces and end tags.

use super::{MAX_DEPTH, Open, Parser, R, predefined};
use crate::body::xml::chars::{is_name_char, is_name_start, is_xml_char};
use crate::body::xml::dtd::{self, Entity};
use crate::body::xml::{Element, Kind, Node, QName};

impl Parser {
    pub(super) fn start_tag(&mut self) -> R<()> {
        let raw = self.name()?;
        let mut attrs: Vec<(String, String)> = Vec::new();
        let empty = loop {
            let had_space = self.space();
            if self.eat("/>") {
                break true;
            }
            if self.eat(">") {
                break false;
            }
            if self.rest().is_empty() {
                return Err(format!("Couldn't find end of Start Tag {raw}"));
            }
            if !had_space {
                return Err("attributes construct error".to_owned());
            }
            let (name, value) = self.attribute()?;
            if is_duplicate(&attrs, &name, &value) {
                return Err(format!("Attribute {name} redefined"));
            }
            attrs.push((name, value));
        };
        if self.open.len() > MAX_DEPTH {
            return Err(format!(
                "Excessive depth in document: {MAX_DEPTH} use XML_PARSE_HUGE option"
            ));
        }
        let id = self.add_element(&raw, attrs);
        if empty {
            self.scopes.pop();
            self.finish_element(id);
        } else {
            self.open.push(Open { id, raw });
        }
        Ok(())
    }

    fn attribute(&mut self) -> R<(String, String)> {
        let name = self.name()?;
        self.space();
        if !self.eat("=") {
            return Err(format!("Specification mandates value for attribute {name}"));
        }
        self.space();
        let quote = match self.peek() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err("AttValue: \" or ' expected".to_owned()),
        };
        self.advance(1);
        let rest = self.rest();
        let end = rest.find(quote).ok_or("AttValue: ' expected")?;
        let raw = rest[..end].to_owned();
        self.advance(end + 1);
        let mut value = String::with_capacity(raw.len());
        self.normalize_attribute(&raw, 0, &mut value)?;
        Ok((name, value))
    }

    /// Attribute-value normalization: references replaced, whitespace characters become
    /// spaces, `<` forbidden (also inside entity replacement text).
    fn normalize_attribute(&mut self, raw: &str, depth: usize, out: &mut String) -> R<()> {
        let mut rest = raw;
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            match c {
                '<' => return Err("Unescaped '<' not allowed in attributes values".to_owned()),
                '\t' | '\n' | '\r' => out.push(' '),
                '&' => {
                    let end = rest.find(';').ok_or("EntityRef: expecting ';'")?;
                    let reference = &rest[..end];
                    rest = &rest[end + 1..];
                    self.attribute_reference(reference, depth, out)?;
                }
                c if is_xml_char(c) => out.push(c),
                _ => return Err("invalid xmlChar value in attribute".to_owned()),
            }
        }
        Ok(())
    }

    fn attribute_reference(&mut self, reference: &str, depth: usize, out: &mut String) -> R<()> {
        if let Some(body) = reference.strip_prefix('#') {
            out.push(dtd::char_ref_value(body)?);
            return Ok(());
        }
        if reference.is_empty()
            || !reference.starts_with(is_name_start)
            || !reference.chars().all(is_name_char)
        {
            return Err("EntityRef: invalid name".to_owned());
        }
        if let Some(c) = predefined(reference) {
            out.push_str(c);
            return Ok(());
        }
        match self.dtd.entities.get(reference).cloned() {
            Some(Entity::Internal(text)) => {
                if depth >= 40 {
                    return Err("Detected an entity reference loop".to_owned());
                }
                self.budget = self
                    .budget
                    .checked_sub(text.len())
                    .ok_or("Maximum entity amplification factor exceeded")?;
                self.normalize_attribute(&text, depth + 1, out)
            }
            Some(_) => Err(format!(
                "Attribute references external entity '{reference}'"
            )),
            None if self.dtd.incomplete => Ok(()),
            None => Err(format!("Entity '{reference}' not defined")),
        }
    }

    /// Creates the element and its attribute nodes, resolving namespaces.
    fn add_element(&mut self, raw: &str, attrs: Vec<(String, String)>) -> usize {
        let mut bindings = Vec::new();
        let mut plain = Vec::new();
        for (name, value) in attrs {
            match namespace_prefix(&name) {
                Some(prefix) => bindings.push((prefix.to_owned(), value)),
                None => plain.push((name, value)),
            }
        }
        self.scopes.push(bindings);
        let parent = self.open.last().map(|o| o.id);
        let id = self.doc.nodes.len();
        let name = self.resolve(raw, true);
        let in_entity = self.in_entity();
        self.doc.nodes.push(Node {
            kind: Kind::Element(Element {
                name,
                ..Element::default()
            }),
            parent,
            in_entity,
        });
        match parent {
            Some(p) => {
                if let Kind::Element(e) = &mut self.doc.nodes[p].kind {
                    e.children.push(id);
                }
            }
            None => self.doc.root = Some(id),
        }
        for (name, value) in plain {
            let attr_id = self.doc.nodes.len();
            let name = self.resolve(&name, false);
            self.doc.nodes.push(Node {
                kind: Kind::Attribute { name, value },
                parent: Some(id),
                in_entity,
            });
            if let Kind::Element(e) = &mut self.doc.nodes[id].kind {
                e.attributes.push(attr_id);
            }
        }
        id
    }

    /// Splits a QName and finds its namespace; an undeclared prefix is kept in the name
    /// (libxml2 reports it as a namespace error, which is not fatal).
    fn resolve(&self, raw: &str, element: bool) -> QName {
        let lookup = |prefix: &str| {
            if prefix == "xml" {
                return Some("http://www.w3.org/XML/1998/namespace".to_owned());
            }
            self.scopes
                .iter()
                .rev()
                .flatten()
                .find(|(p, _)| p == prefix)
                .map(|(_, uri)| uri.clone())
        };
        if let Some((prefix, local)) = raw.split_once(':') {
            if let Some(ns) = lookup(prefix).filter(|u| !u.is_empty()) {
                return QName {
                    raw: raw.to_owned(),
                    prefix: Some(prefix.to_owned()),
                    local: local.to_owned(),
                    ns: Some(ns),
                };
            }
            return QName {
                raw: raw.to_owned(),
                prefix: None,
                local: raw.to_owned(),
                ns: None,
            };
        }
        let ns = if element {
            lookup("").filter(|u| !u.is_empty())
        } else {
            None
        };
        QName {
            raw: raw.to_owned(),
            prefix: None,
            local: raw.to_owned(),
            ns,
        }
    }

    pub(super) fn end_tag(&mut self) -> R<()> {
        let name = self.name()?;
        self.space();
        if !self.eat(">") {
            return Err(format!("expected '>' in end tag {name}"));
        }
        let Some(open) = self.open.last() else {
            return Err("unexpected end tag".to_owned());
        };
        if open.raw != name {
            return Err(format!(
                "Opening and ending tag mismatch: {} and {name}",
                open.raw
            ));
        }
        if self.input().entity.is_some() && self.open.len() <= self.input().depth {
            return Err("Entity content is not well balanced".to_owned());
        }
        let id = open.id;
        self.open.pop();
        self.scopes.pop();
        self.finish_element(id);
        Ok(())
    }
}

/// libxml2 rejects a repeated attribute, and a repeated namespace declaration unless one of
/// them is ignored (a prefixed declaration with an empty URI).
fn is_duplicate(attrs: &[(String, String)], name: &str, value: &str) -> bool {
    attrs.iter().any(|(n, v)| {
        n == name
            && match namespace_prefix(n) {
                Some("") | None => true,
                Some(_) => !v.is_empty() && !value.is_empty(),
            }
    })
}

/// The prefix an `xmlns` / `xmlns:p` attribute declares (empty for the default namespace).
fn namespace_prefix(attr: &str) -> Option<&str> {
    if attr == "xmlns" {
        return Some("");
    }
    attr.strip_prefix("xmlns:").filter(|p| !p.is_empty())
}
