//! Why a problem cannot be solved: input that names what does not exist, or whose answer does
//! not fit the answer's integers.

use std::fmt;

/// Why `solve` refused a problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowError {
    /// A block's candidate names a region index past the end of the region list.
    UnknownRegion {
        block: usize,
        region: usize,
        regions: usize,
    },
    /// The least total cost exceeds `u128` (only with loads and costs near `u64::MAX`).
    CostOverflow,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowError::UnknownRegion {
                block,
                region,
                regions,
            } => write!(
                f,
                "block {block} names region {region}, but there are only {regions} regions"
            ),
            FlowError::CostOverflow => write!(f, "the total cost does not fit in 128 bits"),
        }
    }
}

impl std::error::Error for FlowError {}
