//! Explanations: for one request, every policy that was considered and why each rule did or
//! did not match. Slower than [`Engine::evaluate`]; meant for people (`policy explain`).

use std::fmt;

use bulkhead_resources::{MtlsMode, Protocol};
use serde_json::{Value, json};

use crate::decision::{Decision, Direction, Layer};
use crate::engine::{Endpoint, Engine};
use crate::eval::ResolvedSource;
use crate::network::{NetPeer, NpId, RuleMiss};
use crate::request::{Destination, Request};

/// A decision with the reasoning behind it.
#[derive(Debug, Clone)]
pub struct Explanation<'e> {
    /// The decision, exactly as [`Engine::evaluate`] returns it.
    pub decision: Decision<'e>,
    /// The source principal as the destination sees it (`None` = plaintext).
    pub principal: Option<String>,
    /// Effective mutual TLS mode at the destination port, with the policy that set it.
    pub mtls: Option<(MtlsMode, Option<&'e str>)>,
    /// Every policy that selects the source (egress) or destination, in evaluation order.
    pub policies: Vec<PolicyReport<'e>>,
}

/// One policy's part in an explanation.
#[derive(Debug, Clone)]
pub struct PolicyReport<'e> {
    /// The layer the policy belongs to.
    pub layer: Layer,
    /// `Kind/ns/name`.
    pub policy: &'e str,
    /// Its role: `egress`, `ingress`, `DENY`, `ALLOW`, `AUDIT`, `dry-run DENY`, …
    pub role: String,
    /// Whether any rule matched.
    pub matched: bool,
    /// Each rule's outcome.
    pub rules: Vec<RuleReport>,
}

/// One rule's outcome.
#[derive(Debug, Clone)]
pub struct RuleReport {
    /// 0-based rule index.
    pub index: usize,
    /// Whether the rule matched.
    pub matched: bool,
    /// Why not, when it did not.
    pub why: Option<String>,
}

impl Engine {
    /// Evaluates `req` and explains every policy that took part.
    pub fn explain<'e>(&'e self, req: &Request<'_>) -> Explanation<'e> {
        let decision = self.evaluate(req);
        let src = self.resolve_source(req);
        let mut policies = self.explain_network(req, &src);
        let mut principal = src.principal.map(str::to_owned);
        let mut mtls = None;
        if let Destination::Endpoint(id) = req.destination {
            let dst = self.ep(id);
            let (mode, by) = dst.mtls.mode(req.port);
            mtls = Some((mode, by.map(|i| self.authn[i as usize].name.as_str())));
            if mode == MtlsMode::Disable {
                principal = None;
            }
            policies.extend(self.explain_authz(req, &src, dst, principal.as_deref()));
        }
        Explanation {
            decision,
            principal,
            mtls,
            policies,
        }
    }

    fn explain_network<'e>(
        &'e self,
        req: &Request<'_>,
        src: &ResolvedSource<'_>,
    ) -> Vec<PolicyReport<'e>> {
        let view = self.net_view(req, src);
        let named = |name: &str, proto: Protocol| view.named_port(name, proto);
        let mut out = self.network_reports(
            &self.source_egress(src),
            Direction::Egress,
            &view.dst_peer,
            req,
            &named,
        );
        if let Some(dst) = view.internal_destination() {
            out.extend(self.network_reports(
                &dst.ingress,
                Direction::Ingress,
                &view.src_peer,
                req,
                &named,
            ));
        }
        out
    }

    fn network_reports<'e>(
        &'e self,
        ids: &[NpId],
        direction: Direction,
        peer: &NetPeer<'_>,
        req: &Request<'_>,
        named: &dyn Fn(&str, Protocol) -> Option<u16>,
    ) -> Vec<PolicyReport<'e>> {
        ids.iter()
            .map(|&id| {
                let np = &self.network[id as usize];
                let rules: Vec<RuleReport> = np
                    .rules(direction)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .map(|(index, r)| {
                        let res = r.check(np.namespace, peer, req.protocol, req.port, named);
                        RuleReport {
                            index,
                            matched: res.is_ok(),
                            why: res.err().map(|m| match m {
                                RuleMiss::Peer => format!("no {} peer matches", direction.as_str()),
                                RuleMiss::Port => {
                                    format!("no port entry matches {}/{}", req.protocol, req.port)
                                }
                            }),
                        }
                    })
                    .collect();
                PolicyReport {
                    layer: Layer::Network,
                    policy: &np.name,
                    role: direction.as_str().to_owned(),
                    matched: rules.iter().any(|r| r.matched),
                    rules,
                }
            })
            .collect()
    }

    fn explain_authz<'e>(
        &'e self,
        req: &Request<'_>,
        src: &ResolvedSource<'_>,
        dst: &'e Endpoint,
        principal: Option<&str>,
    ) -> Vec<PolicyReport<'e>> {
        let groups = [
            ("CUSTOM", &[][..]),
            ("DENY", &dst.authz.deny[..]),
            ("ALLOW", &dst.authz.allow[..]),
            ("AUDIT", &dst.authz.audit[..]),
            ("dry-run", &dst.authz.dry_run[..]),
        ];
        let reports = self.with_attrs(req, src, dst, principal, |a| {
            let mut out = Vec::new();
            for (role, ids) in groups {
                for &i in ids {
                    let p = &self.authz[i as usize];
                    let rules: Vec<RuleReport> = p
                        .rule_outcomes(a)
                        .into_iter()
                        .enumerate()
                        .map(|(index, r)| RuleReport {
                            index,
                            matched: r.is_ok(),
                            why: r.err().map(|m| m.to_string()),
                        })
                        .collect();
                    out.push(PolicyReport {
                        layer: Layer::Authorization,
                        policy: &p.name,
                        role: if role == "dry-run" {
                            format!("dry-run {}", p.action.as_str())
                        } else {
                            role.to_owned()
                        },
                        matched: rules.iter().any(|r| r.matched),
                        rules,
                    });
                }
            }
            out
        });
        reports.unwrap_or_default()
    }
}

impl Explanation<'_> {
    /// Machine-readable form (`policy explain -o json`).
    pub fn to_json(&self) -> Value {
        let mut m = self.decision.to_json();
        m.insert("principal".into(), json!(self.principal));
        if let Some((mode, by)) = &self.mtls {
            m.insert("mtls".into(), json!({"mode": mode.as_str(), "policy": by}));
        }
        let policies: Vec<Value> = self
            .policies
            .iter()
            .map(|p| {
                json!({
                    "layer": p.layer.as_str(),
                    "policy": p.policy,
                    "role": p.role,
                    "matched": p.matched,
                    "rules": p.rules.iter().map(|r| json!({"index": r.index, "matched": r.matched, "why": r.why})).collect::<Vec<_>>(),
                })
            })
            .collect();
        m.insert("policies".into(), Value::Array(policies));
        Value::Object(m)
    }
}

impl fmt::Display for Explanation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.decision;
        writeln!(f, "decision: {}", d.verdict().to_uppercase())?;
        writeln!(f, "layer:    {}", d.layer.as_str())?;
        writeln!(f, "policy:   {}", d.policy.unwrap_or("-"))?;
        if let Some(rule) = d.rule {
            writeln!(f, "rule:     {rule}")?;
        }
        writeln!(f, "reason:   {}", d.reason)?;
        writeln!(
            f,
            "peer:     {}",
            self.principal
                .as_deref()
                .unwrap_or("plaintext (no principal)")
        )?;
        if let Some((mode, by)) = &self.mtls {
            writeln!(
                f,
                "mTLS:     {} ({})",
                mode.as_str(),
                by.unwrap_or("default")
            )?;
        }
        if self.policies.is_empty() {
            return writeln!(f, "\nno policy selects the source or the destination");
        }
        writeln!(f, "\npolicies considered:")?;
        for p in &self.policies {
            let verdict = match (p.matched, !d.allowed && p.layer.rank() > d.layer.rank()) {
                (_, true) => "not reached (an earlier layer denied)",
                (true, false) => "matched",
                (false, false) => "no match",
            };
            writeln!(
                f,
                "  [{}] {} ({}): {verdict}",
                p.layer.as_str(),
                p.policy,
                p.role
            )?;
            if p.rules.is_empty() {
                writeln!(f, "      no rules")?;
            }
            for r in &p.rules {
                match &r.why {
                    None => writeln!(f, "      rule {}: matched", r.index)?,
                    Some(why) => writeln!(f, "      rule {}: {why}", r.index)?,
                }
            }
        }
        for h in d.audit.iter().chain(&d.dry_run) {
            let verdict = if h.matched { "matched" } else { "no match" };
            writeln!(f, "  [report-only] {} ({}): {verdict}", h.policy, h.action)?;
        }
        Ok(())
    }
}
