//! The outcome of an evaluation and the explanation that travels with it.

use std::fmt;

use bulkhead_resources::{MtlsMode, Protocol};

/// The layer that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Kubernetes NetworkPolicy (egress of the source, ingress of the destination).
    Network,
    /// PeerAuthentication (mutual TLS mode).
    Authentication,
    /// AuthorizationPolicy.
    Authorization,
}

impl Layer {
    /// The name used in decision records.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Network => "network",
            Layer::Authentication => "authentication",
            Layer::Authorization => "authorization",
        }
    }

    /// Evaluation order: network, then authentication, then authorization.
    pub fn rank(self) -> u8 {
        match self {
            Layer::Network => 0,
            Layer::Authentication => 1,
            Layer::Authorization => 2,
        }
    }
}

/// Traffic direction at the network layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The source's outgoing traffic.
    Egress,
    /// The destination's incoming traffic.
    Ingress,
}

impl Direction {
    /// `egress` / `ingress`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        }
    }
}

/// Why a decision came out as it did, rendered into the `reason` sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// A direction is isolated and none of the isolating policies' rules allow the traffic.
    NetworkNotAllowed {
        /// Which side's policies isolate.
        direction: Direction,
        /// How many NetworkPolicies isolate that side in that direction.
        policies: usize,
        /// Protocol of the connection.
        protocol: Protocol,
        /// Destination port.
        port: u16,
    },
    /// Plaintext arrived where the mutual TLS mode demands mTLS.
    PlaintextRejected {
        /// The effective mode (STRICT).
        mode: MtlsMode,
        /// The port it applies to.
        port: u16,
    },
    /// A DENY policy matched.
    DenyMatched,
    /// ALLOW policies apply and none matched.
    NoAllowMatched {
        /// How many ALLOW policies were considered.
        policies: usize,
    },
    /// The request path could not be normalized (e.g. it contains `%00`).
    InvalidPath(String),
    /// An ALLOW policy matched.
    AllowMatched,
    /// No ALLOW policy applies to the destination, and nothing denied.
    NoAllowPolicies,
    /// The destination is outside the mesh and the source's egress allows it.
    ExternalAllowed,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NetworkNotAllowed {
                direction,
                policies,
                protocol,
                port,
            } => write!(
                f,
                "{} is isolated by {policies} NetworkPolic{} and no {} rule allows {protocol}/{port}",
                match direction {
                    Direction::Egress => "source egress",
                    Direction::Ingress => "destination ingress",
                },
                if *policies == 1 { "y" } else { "ies" },
                direction.as_str()
            ),
            Reason::PlaintextRejected { mode, port } => write!(
                f,
                "plaintext connection refused: mutual TLS mode on port {port} is {}",
                mode.as_str()
            ),
            Reason::DenyMatched => f.write_str("a DENY policy matched"),
            Reason::NoAllowMatched { policies } => write!(
                f,
                "no rule of the {policies} ALLOW polic{} applying to the destination matched",
                if *policies == 1 { "y" } else { "ies" }
            ),
            Reason::InvalidPath(e) => write!(f, "request path rejected: {e}"),
            Reason::AllowMatched => f.write_str("an ALLOW policy matched"),
            Reason::NoAllowPolicies => f.write_str(
                "allowed: no NetworkPolicy, PeerAuthentication or DENY policy refused it and no ALLOW policy applies",
            ),
            Reason::ExternalAllowed => {
                f.write_str("allowed: destination is outside the mesh and source egress permits it")
            }
        }
    }
}

/// An AUDIT or dry-run policy's verdict on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyHit<'e> {
    /// `AuthorizationPolicy/ns/name`.
    pub policy: &'e str,
    /// `ALLOW`, `DENY` or `AUDIT`.
    pub action: &'static str,
    /// Whether any rule matched.
    pub matched: bool,
    /// The first matching rule.
    pub rule: Option<usize>,
}

/// An allow or deny with the layer, policy and rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'e> {
    /// True for allow.
    pub allowed: bool,
    /// The deciding layer (for an allow, the last one evaluated).
    pub layer: Layer,
    /// `Kind/ns/name` of the deciding policy.
    pub policy: Option<&'e str>,
    /// Index of the deciding rule in that policy.
    pub rule: Option<usize>,
    /// Why.
    pub reason: Reason,
    /// For a default deny: every policy that was considered.
    pub considered: Vec<&'e str>,
    /// AUDIT policies' verdicts.
    pub audit: Vec<PolicyHit<'e>>,
    /// Dry-run policies' verdicts (never enforced).
    pub dry_run: Vec<PolicyHit<'e>>,
}

impl<'e> Decision<'e> {
    pub(crate) fn new(allowed: bool, layer: Layer, reason: Reason) -> Self {
        Decision {
            allowed,
            layer,
            policy: None,
            rule: None,
            reason,
            considered: Vec::new(),
            audit: Vec::new(),
            dry_run: Vec::new(),
        }
    }

    pub(crate) fn by(mut self, policy: &'e str, rule: Option<usize>) -> Self {
        self.policy = Some(policy);
        self.rule = rule;
        self
    }

    /// `"allow"` or `"deny"`.
    pub fn verdict(&self) -> &'static str {
        if self.allowed { "allow" } else { "deny" }
    }

    /// The decision record of the `bulkhead policy eval` contract (without `id`).
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::{Value, json};
        let mut m = serde_json::Map::new();
        m.insert("decision".into(), json!(self.verdict()));
        m.insert("layer".into(), json!(self.layer.as_str()));
        m.insert("policy".into(), json!(self.policy));
        m.insert("rule".into(), json!(self.rule));
        m.insert("reason".into(), json!(self.reason.to_string()));
        if !self.considered.is_empty() {
            m.insert("considered".into(), json!(self.considered));
        }
        let hits = |hits: &[PolicyHit<'_>]| -> Value {
            hits.iter()
                .map(|h| json!({"policy": h.policy, "action": h.action, "matched": h.matched, "rule": h.rule}))
                .collect()
        };
        if !self.audit.is_empty() {
            m.insert("audit".into(), hits(&self.audit));
        }
        if !self.dry_run.is_empty() {
            m.insert("dry_run".into(), hits(&self.dry_run));
        }
        m
    }
}
