//! XML request bodies: a strict, non-validating XML 1.0 parser with libxml2's observable
//! behaviour for what libmodsecurity 3 exposes (`XML:<xpath>` values, well-formedness as the
//! `REQBODY_ERROR` verdict), plus the XPath subset rules use.
//!
//! As libmodsecurity does with libxml2: external entities are never loaded (a reference to
//! one expands to nothing), internal entities from the DTD are expanded, namespace errors are
//! not fatal (an undeclared prefix just stays part of the name), and a malformed document
//! still yields the part parsed before the error (see [`parse_xml_partial`]).

mod chars;
mod dtd;
mod parser;
mod xpath;

/// libmodsecurity's only XML error message (libxml2's own message is not exposed). This is
/// the wording since 3.0.14 (the version CRS CI runs); 3.0.9-3.0.13 said
/// `XML: Failed parsing document.`
pub(crate) const XML_ERROR: &str = "XML parsing error: XML: Failed to parse document.";

/// Parsed XML document, enough for the XPath expressions CRS uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmlDoc {
    /// Nodes in document order (an element, then its attributes, then its content).
    nodes: Vec<Node>,
    /// The document element, if one was started.
    root: Option<usize>,
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: Kind,
    parent: Option<usize>,
    /// Created while expanding an entity: libxml2 hangs such content under an entity
    /// reference node that XPath steps do not enter, yet it counts in string values.
    in_entity: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Element(Element),
    Attribute {
        name: QName,
        value: String,
    },
    /// Character data or a CDATA section.
    Text(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Element {
    name: QName,
    attributes: Vec<usize>,
    children: Vec<usize>,
    /// One past the last node of this element's subtree.
    end: usize,
}

/// A possibly prefixed name and the namespace it resolved to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct QName {
    /// The name as written (`p:local` stays whole when `p` is undeclared).
    raw: String,
    /// Prefix, when declared.
    prefix: Option<String>,
    /// Local part (the whole name when unprefixed or the prefix is undeclared).
    local: String,
    /// Namespace URI, if any.
    ns: Option<String>,
}

/// What [`parse_xml_partial`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmlOutcome {
    /// The document, complete or cut at the first error (libmodsecurity keeps libxml2's
    /// partial tree and still evaluates `XML:` targets on it).
    pub doc: XmlDoc,
    /// `REQBODY_ERROR_MSG` when the document is not well-formed.
    pub error: Option<String>,
    /// What was wrong, in libxml2's words where practical (for debug logs only).
    pub detail: Option<String>,
}

/// Parses an XML body; any well-formedness error gives libmodsecurity's
/// `XML parsing error: XML: Failed to parse document.`
pub fn parse_xml(body: &[u8]) -> Result<XmlDoc, String> {
    let out = parse_xml_partial(body);
    match out.error {
        Some(e) => Err(e),
        None => Ok(out.doc),
    }
}

/// Parses an XML body, keeping the part of the tree built before an error.
pub fn parse_xml_partial(body: &[u8]) -> XmlOutcome {
    let (doc, detail) = parser::parse(body);
    XmlOutcome {
        doc,
        error: detail.as_ref().map(|_| XML_ERROR.to_owned()),
        detail,
    }
}

impl XmlDoc {
    /// Evaluates an XPath expression and returns each selected node's string value, as
    /// libmodsecurity's `XML:` variable does with `xmlNodeGetContent` (an element gives all of
    /// its descendant text concatenated, an attribute its value).
    ///
    /// Supported: absolute location paths made of `/` and `//` steps whose node tests are
    /// `*`, a name, `@*`, `@name`, `text()` or `node()`, and unions of them with `|`; e.g.
    /// `/*`, `//@*`, `//*`, `/soap:Envelope/soap:Body` (with [`XmlDoc::select_ns`]).
    /// Anything else is an error.
    pub fn select(&self, xpath: &str) -> Result<Vec<Vec<u8>>, String> {
        self.select_ns(xpath, &[])
    }

    /// Like [`XmlDoc::select`], with namespace prefixes registered for the expression (the
    /// `xmlns:prefix=uri` rule action).
    pub fn select_ns(
        &self,
        xpath: &str,
        namespaces: &[(&str, &str)],
    ) -> Result<Vec<Vec<u8>>, String> {
        let ids = xpath::evaluate(self, xpath, namespaces)?;
        Ok(ids
            .into_iter()
            .map(|id| self.string_value(id).into_bytes())
            .collect())
    }

    /// `xmlNodeGetContent` of a node (`None` = the document node).
    fn string_value(&self, id: Option<usize>) -> String {
        let range = match id {
            None => 0..self.nodes.len(),
            Some(i) => match &self.nodes[i].kind {
                Kind::Element(e) => i..e.end,
                Kind::Attribute { value, .. } => return value.clone(),
                Kind::Text(t) => return t.clone(),
            },
        };
        let mut out = String::new();
        for node in &self.nodes[range] {
            if let Kind::Text(t) = &node.kind {
                out.push_str(t);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
