//! Sorted disjoint integer ranges, the storage behind `IpSet`.
//!
//! Written once over [`Bound`] so IPv4 (`u32`) and IPv6 (`u128`) share the
//! merge and subtraction code, which is where off-by-one bugs would hide.

/// An unsigned integer usable as an inclusive range bound.
pub(super) trait Bound: Copy + Ord {
    /// `self + 1`, or `None` at the type's maximum.
    fn succ(self) -> Option<Self>;
    /// `self - 1`, or `None` at zero.
    fn pred(self) -> Option<Self>;
}

impl Bound for u32 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn pred(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

impl Bound for u128 {
    fn succ(self) -> Option<Self> {
        self.checked_add(1)
    }
    fn pred(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

/// Inclusive `(start, end)` ranges, sorted, with no two overlapping or adjacent.
///
/// Keeping adjacent ranges merged makes the representation canonical, so
/// equal sets compare equal and lookups touch the fewest ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ranges<T>(Vec<(T, T)>);

impl<T> Default for Ranges<T> {
    fn default() -> Self {
        Ranges(Vec::new())
    }
}

impl<T: Bound> Ranges<T> {
    /// Sorts and merges arbitrary ranges; each must have `start <= end`.
    pub(super) fn from_unsorted(mut ranges: Vec<(T, T)>) -> Self {
        ranges.sort_unstable();
        let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            if let Some(last) = merged.last_mut() {
                // `None` means `last` already reaches the maximum address.
                if last.1.succ().is_none_or(|next| start <= next) {
                    last.1 = last.1.max(end);
                    continue;
                }
            }
            merged.push((start, end));
        }
        Ranges(merged)
    }

    /// Whether `x` lies in some range (binary search).
    pub(super) fn contains(&self, x: T) -> bool {
        let after = self.0.partition_point(|&(start, _)| start <= x);
        after > 0 && self.0[after - 1].1 >= x
    }

    /// The ranges of `self` with every value of `other` removed.
    pub(super) fn subtract(&self, other: &Ranges<T>) -> Ranges<T> {
        let holes = &other.0;
        let mut out = Vec::with_capacity(self.0.len());
        let mut first_hole = 0;
        for &(start, end) in &self.0 {
            while first_hole < holes.len() && holes[first_hole].1 < start {
                first_hole += 1;
            }
            let mut start = Some(start);
            for &(hole_start, hole_end) in holes[first_hole..].iter() {
                let Some(s) = start.filter(|&s| hole_start <= end && s <= end) else {
                    break;
                };
                if let Some(before) = hole_start.pred().filter(|&b| b >= s) {
                    out.push((s, before));
                }
                start = hole_end.succ().map(|next| next.max(s));
            }
            if let Some(s) = start.filter(|&s| s <= end) {
                out.push((s, end));
            }
        }
        Ranges(out)
    }

    /// Number of ranges.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The ranges, in ascending order.
    pub(super) fn as_slice(&self) -> &[(T, T)] {
        &self.0
    }
}
