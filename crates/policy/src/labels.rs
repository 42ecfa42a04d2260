//! Interned labels and precompiled label selectors.
//!
//! Label keys and values are interned to `u32` once at compile time, so a selector match
//! on the hot path is a handful of integer comparisons over a sorted slice, never a
//! string comparison or hash of user data.

use std::collections::HashMap;

use bulkhead_resources::{LabelSelector, Labels, Operator, WorkloadSelector};

/// Interned id of a label key or value.
pub(crate) type Sym = u32;

/// The value id used for strings that no selector mentions.
const UNKNOWN: Sym = Sym::MAX;

/// String interner for label keys and values.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    ids: HashMap<String, Sym>,
}

impl Interner {
    /// The id of `s`, creating one when new.
    pub(crate) fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = Sym::try_from(self.ids.len()).expect("fewer than 2^32 distinct label strings");
        self.ids.insert(s.to_owned(), id);
        id
    }

    /// The id of `s` if it was ever interned.
    pub(crate) fn get(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    /// Interns a whole label set.
    pub(crate) fn intern_labels(&mut self, labels: &Labels) -> LabelSet {
        let mut pairs: Vec<(Sym, Sym)> = labels
            .iter()
            .map(|(k, v)| (self.intern(k), self.intern(v)))
            .collect();
        pairs.sort_unstable();
        LabelSet(pairs.into_boxed_slice())
    }

    /// Converts labels seen only at evaluation time (a raw peer's) without growing the
    /// interner: keys no selector knows are dropped, unknown values match no value.
    pub(crate) fn lookup_labels(&self, labels: &Labels) -> LabelSet {
        let mut pairs: Vec<(Sym, Sym)> = labels
            .iter()
            .filter_map(|(k, v)| Some((self.get(k)?, self.get(v).unwrap_or(UNKNOWN))))
            .collect();
        pairs.sort_unstable();
        LabelSet(pairs.into_boxed_slice())
    }
}

/// A label set as sorted `(key, value)` ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSet(Box<[(Sym, Sym)]>);

impl LabelSet {
    fn value(&self, key: Sym) -> Option<Sym> {
        self.0
            .binary_search_by_key(&key, |&(k, _)| k)
            .ok()
            .map(|i| self.0[i].1)
    }
}

/// One compiled `matchExpressions` requirement (or a `matchLabels` pair, as `In` with one value).
#[derive(Debug, Clone)]
enum Req {
    In(Sym, Box<[Sym]>),
    NotIn(Sym, Box<[Sym]>),
    Exists(Sym),
    DoesNotExist(Sym),
}

/// A compiled label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    reqs: Box<[Req]>,
}

impl Selector {
    /// Compiles a Kubernetes `LabelSelector`.
    pub(crate) fn compile(sel: &LabelSelector, interner: &mut Interner) -> Self {
        let mut reqs: Vec<Req> = sel
            .match_labels
            .iter()
            .map(|(k, v)| Req::In(interner.intern(k), Box::new([interner.intern(v)])))
            .collect();
        for r in &sel.match_expressions {
            let key = interner.intern(&r.key);
            let mut values: Vec<Sym> = r.values.iter().map(|v| interner.intern(v)).collect();
            values.sort_unstable();
            reqs.push(match r.operator {
                Operator::In => Req::In(key, values.into()),
                Operator::NotIn => Req::NotIn(key, values.into()),
                Operator::Exists => Req::Exists(key),
                Operator::DoesNotExist => Req::DoesNotExist(key),
            });
        }
        Selector { reqs: reqs.into() }
    }

    /// Compiles an Istio `WorkloadSelector` (`matchLabels` only).
    pub(crate) fn compile_workload(sel: &WorkloadSelector, interner: &mut Interner) -> Self {
        Self::compile_labels(&sel.match_labels, interner)
    }

    /// Compiles an equality map such as a Service selector.
    pub(crate) fn compile_labels(labels: &Labels, interner: &mut Interner) -> Self {
        let reqs = labels
            .iter()
            .map(|(k, v)| Req::In(interner.intern(k), Box::new([interner.intern(v)])))
            .collect();
        Selector { reqs }
    }

    /// Whether `labels` satisfy every requirement.
    pub(crate) fn matches(&self, labels: &LabelSet) -> bool {
        self.reqs.iter().all(|r| match r {
            Req::In(k, vs) => labels.value(*k).is_some_and(|v| vs.contains(&v)),
            Req::NotIn(k, vs) => labels.value(*k).is_none_or(|v| !vs.contains(&v)),
            Req::Exists(k) => labels.value(*k).is_some(),
            Req::DoesNotExist(k) => labels.value(*k).is_none(),
        })
    }
}

#[cfg(test)]
mod tests;
