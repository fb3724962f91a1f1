//! Exact fee-rate arithmetic: rates are compared as fractions (fee / vsize) by cross-multiplication in `u128`, so
//! ordering never depends on rounding.

use std::cmp::Ordering;

/// A fee over a virtual size, compared exactly as the fraction `fee / vsize`. Used for a single transaction's rate
/// and for a package's (a transaction with its ancestors or descendants).
#[derive(Clone, Copy, Debug)]
pub struct PackageRate {
    /// Total fee in satoshis of the policy asset.
    pub fee: u64,
    /// Total virtual size; treated as at least 1.
    pub vsize: u64,
}

impl PackageRate {
    /// The rate of `fee` over `vsize`.
    pub fn new(fee: u64, vsize: u64) -> Self {
        PackageRate { fee, vsize }
    }

    /// The rate in satoshis per 1000 vbytes, rounded down (for display and RPC).
    pub fn per_kvb(&self) -> u64 {
        let per_kvb = u128::from(self.fee) * 1000 / u128::from(self.vsize.max(1));
        u64::try_from(per_kvb).unwrap_or(u64::MAX)
    }

    /// True if this rate is at least `rate_per_kvb` satoshis per 1000 vbytes.
    pub fn at_least_per_kvb(&self, rate_per_kvb: u64) -> bool {
        u128::from(self.fee) * 1000 >= u128::from(rate_per_kvb) * u128::from(self.vsize.max(1))
    }
}

impl Ord for PackageRate {
    fn cmp(&self, other: &Self) -> Ordering {
        let left = u128::from(self.fee) * u128::from(other.vsize.max(1));
        let right = u128::from(other.fee) * u128::from(self.vsize.max(1));
        left.cmp(&right)
    }
}

impl PartialOrd for PackageRate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PackageRate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PackageRate {}

/// The fee a transaction of `vsize` vbytes must pay at `rate_per_kvb` satoshis per 1000 vbytes, rounded up.
pub fn required_fee(rate_per_kvb: u64, vsize: usize) -> u64 {
    let vsize = u128::try_from(vsize).unwrap_or(u128::MAX);
    let required = (u128::from(rate_per_kvb).saturating_mul(vsize)).div_ceil(1000);
    u64::try_from(required).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_compare_as_fractions() {
        assert_eq!(PackageRate::new(100, 200), PackageRate::new(50, 100));
        assert!(PackageRate::new(101, 200) > PackageRate::new(50, 100));
        assert!(PackageRate::new(0, 10) < PackageRate::new(1, 1_000_000));
        assert_eq!(PackageRate::new(1234, 1000).per_kvb(), 1234);
    }

    #[test]
    fn required_fee_rounds_up() {
        assert_eq!(required_fee(100, 250), 25);
        assert_eq!(required_fee(100, 251), 26);
        assert_eq!(required_fee(0, 251), 0);
        assert!(PackageRate::new(25, 250).at_least_per_kvb(100));
        assert!(!PackageRate::new(24, 250).at_least_per_kvb(100));
    }
}
