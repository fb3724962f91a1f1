//! The mempool's configurable limits and their defaults.

/// Limits of a [`Mempool`](super::Mempool). [`Default`] gives the values documented on each field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Size cap: the total weight of all pooled transactions. Default 100,000,000 weight units (25 million vbytes,
    /// 25 full 4 MWU blocks). Bitcoin Core caps memory use at 300 MB, which holds roughly 100 MB of serialized
    /// transactions; we cap the serialized weight itself, which is deterministic across members and platforms.
    /// When an admission would exceed it, the lowest-fee-rate packages are evicted (see `Mempool::accept`).
    pub max_weight_total: usize,
    /// Minimum relay fee rate in satoshis (of the policy asset) per 1000 vbytes. Default 100, Liquid's 0.1 sat/vB.
    /// A transaction must pay at least `ceil(min_relay_fee_rate * vsize / 1000)`.
    pub min_relay_fee_rate: u64,
    /// Most in-mempool ancestors a transaction may have, counting itself (Bitcoin Core's `-limitancestorcount`).
    /// Default 25.
    pub max_ancestors: usize,
    /// Most in-mempool descendants any transaction may have, counting itself (Bitcoin Core's
    /// `-limitdescendantcount`). Default 25. Together with `max_ancestors` this bounds the work of every
    /// admission, removal and template step.
    pub max_descendants: usize,
    /// Largest standard transaction weight (Bitcoin Core's `MAX_STANDARD_TX_WEIGHT`). Default 400,000.
    pub max_tx_weight: usize,
}

/// Default of [`MempoolLimits::max_weight_total`].
pub const DEFAULT_MAX_WEIGHT_TOTAL: usize = 100_000_000;
/// Default of [`MempoolLimits::min_relay_fee_rate`] (sat per 1000 vbytes).
pub const DEFAULT_MIN_RELAY_FEE_RATE: u64 = 100;
/// Default of [`MempoolLimits::max_ancestors`].
pub const DEFAULT_MAX_ANCESTORS: usize = 25;
/// Default of [`MempoolLimits::max_descendants`].
pub const DEFAULT_MAX_DESCENDANTS: usize = 25;
/// Default of [`MempoolLimits::max_tx_weight`].
pub const DEFAULT_MAX_TX_WEIGHT: usize = 400_000;

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits {
            max_weight_total: DEFAULT_MAX_WEIGHT_TOTAL,
            min_relay_fee_rate: DEFAULT_MIN_RELAY_FEE_RATE,
            max_ancestors: DEFAULT_MAX_ANCESTORS,
            max_descendants: DEFAULT_MAX_DESCENDANTS,
            max_tx_weight: DEFAULT_MAX_TX_WEIGHT,
        }
    }
}
