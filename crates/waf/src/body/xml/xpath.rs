//! The XPath 1.0 subset used in `XML:` targets: absolute location paths of child (`/`) and
//! descendant (`//`) steps with simple node tests, and unions.

use super::{Kind, XmlDoc};

/// A node in a result set: `None` is the document node.
type NodeId = Option<usize>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    /// `*` or a (possibly prefixed) name, on the element axis.
    Element(Option<Name>),
    /// `@*` or `@name`.
    Attribute(Option<Name>),
    Text,
    Node,
    SelfNode,
}

/// A name test with its namespace already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name {
    local: String,
    ns: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Step {
    descendant: bool,
    test: Test,
}

/// Evaluates `expr`; the result is in document order without duplicates.
pub(super) fn evaluate(
    doc: &XmlDoc,
    expr: &str,
    namespaces: &[(&str, &str)],
) -> Result<Vec<NodeId>, String> {
    let mut all = Vec::new();
    for path in expr.split('|') {
        let steps = parse_path(path.trim(), namespaces)?;
        let mut set: Vec<NodeId> = vec![None];
        for step in &steps {
            set = apply(doc, &set, step);
        }
        all.extend(set);
    }
    all.sort();
    all.dedup();
    Ok(all)
}

fn parse_path(path: &str, namespaces: &[(&str, &str)]) -> Result<Vec<Step>, String> {
    if !path.starts_with('/') {
        return Err(format!(
            "unsupported XPath expression (not an absolute path): {path}"
        ));
    }
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        let descendant = if let Some(r) = rest.strip_prefix("//") {
            rest = r;
            true
        } else if let Some(r) = rest.strip_prefix('/') {
            rest = r;
            false
        } else {
            return Err(format!("unsupported XPath expression: {path}"));
        };
        let end = rest.find('/').unwrap_or(rest.len());
        let token = rest[..end].trim();
        rest = &rest[end..];
        if token.is_empty() {
            if rest.is_empty() && !descendant && steps.is_empty() {
                // `/` alone selects the document node.
                return Ok(steps);
            }
            return Err(format!("unsupported XPath expression: {path}"));
        }
        steps.push(Step {
            descendant,
            test: parse_test(token, namespaces)?,
        });
    }
    Ok(steps)
}

fn parse_test(token: &str, namespaces: &[(&str, &str)]) -> Result<Test, String> {
    Ok(match token {
        "*" => Test::Element(None),
        "@*" => Test::Attribute(None),
        "text()" => Test::Text,
        "node()" => Test::Node,
        "." => Test::SelfNode,
        t => match t.strip_prefix('@') {
            Some(name) => Test::Attribute(Some(parse_name(name, namespaces)?)),
            None => Test::Element(Some(parse_name(t, namespaces)?)),
        },
    })
}

fn parse_name(name: &str, namespaces: &[(&str, &str)]) -> Result<Name, String> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    match name.split_once(':') {
        Some((prefix, local)) if valid(prefix) && valid(local) => {
            let ns = namespaces
                .iter()
                .find(|(p, _)| *p == prefix)
                .map(|(_, u)| (*u).to_owned());
            match ns {
                Some(ns) => Ok(Name {
                    local: local.to_owned(),
                    ns: Some(ns),
                }),
                None => Err(format!("Undefined namespace prefix {prefix}")),
            }
        }
        None if valid(name) => Ok(Name {
            local: name.to_owned(),
            ns: None,
        }),
        _ => Err(format!("unsupported XPath step: {name}")),
    }
}

fn apply(doc: &XmlDoc, set: &[NodeId], step: &Step) -> Vec<NodeId> {
    let mut out = Vec::new();
    for &ctx in set {
        match &step.test {
            Test::SelfNode if !step.descendant => out.push(ctx),
            Test::Attribute(name) => {
                let mut holders = vec![ctx];
                if step.descendant {
                    holders.extend(descendants(doc, ctx));
                }
                for h in holders.into_iter().flatten() {
                    if let Kind::Element(e) = &doc.nodes[h].kind {
                        out.extend(
                            e.attributes
                                .iter()
                                .filter(|a| matches_attr(doc, **a, name.as_ref()))
                                .map(|a| Some(*a)),
                        );
                    }
                }
            }
            test => {
                let candidates = if step.descendant {
                    descendants(doc, ctx)
                } else {
                    children(doc, ctx)
                };
                out.extend(candidates.into_iter().filter(|n| matches(doc, *n, test)));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn children(doc: &XmlDoc, ctx: NodeId) -> Vec<NodeId> {
    match ctx {
        None => doc.root.map(Some).into_iter().collect(),
        Some(i) => match &doc.nodes[i].kind {
            Kind::Element(e) => e
                .children
                .iter()
                .filter(|c| !doc.nodes[**c].in_entity)
                .map(|c| Some(*c))
                .collect(),
            _ => Vec::new(),
        },
    }
}

/// Element and text nodes below `ctx` (not `ctx` itself), in document order.
fn descendants(doc: &XmlDoc, ctx: NodeId) -> Vec<NodeId> {
    let range = match ctx {
        None => 0..doc.nodes.len(),
        Some(i) => match &doc.nodes[i].kind {
            Kind::Element(e) => i + 1..e.end.max(i + 1),
            _ => return Vec::new(),
        },
    };
    range
        .filter(|n| {
            !doc.nodes[*n].in_entity && !matches!(doc.nodes[*n].kind, Kind::Attribute { .. })
        })
        .map(Some)
        .collect()
}

fn matches(doc: &XmlDoc, node: NodeId, test: &Test) -> bool {
    let Some(i) = node else { return false };
    match (&doc.nodes[i].kind, test) {
        (Kind::Element(e), Test::Element(name)) => name
            .as_ref()
            .is_none_or(|n| n.local == e.name.local && n.ns == e.name.ns),
        (Kind::Text(_), Test::Text) => true,
        (Kind::Element(_) | Kind::Text(_), Test::Node | Test::SelfNode) => true,
        _ => false,
    }
}

fn matches_attr(doc: &XmlDoc, attr: usize, name: Option<&Name>) -> bool {
    match &doc.nodes[attr].kind {
        Kind::Attribute { name: q, .. } => name.is_none_or(|n| n.local == q.local && n.ns == q.ns),
        _ => false,
    }
}
