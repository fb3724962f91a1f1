//! The transaction merkle root (Bitcoin's `BlockMerkleRoot` over txids, which Elements keeps).

use elements::hashes::{sha256d, HashEngine};
use elements::{Transaction, TxMerkleNode};

/// Merkle root of the txids: pairwise SHA256d, the last node of an odd level paired with itself; all zeros for no
/// transactions.
pub fn merkle_root(txdata: &[Transaction]) -> TxMerkleNode {
    let leaves: Vec<[u8; 32]> = txdata.iter().map(|tx| tx.txid().to_byte_array()).collect();
    TxMerkleNode::from_byte_array(merkle_root_of(leaves))
}

/// Merkle root over raw 32-byte leaves (internal byte order).
fn merkle_root_of(mut level: Vec<[u8; 32]>) -> [u8; 32] {
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                let left = pair.first().copied().unwrap_or([0u8; 32]);
                let right = pair.get(1).copied().unwrap_or(left);
                let mut engine = sha256d::Hash::engine();
                engine.input(&left);
                engine.input(&right);
                sha256d::Hash::from_engine(engine).to_byte_array()
            })
            .collect();
    }
    level.first().copied().unwrap_or([0u8; 32])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(hex_text: &str) -> elements::Block {
        elements::encode::deserialize(&hex::decode(hex_text.trim()).unwrap()).unwrap()
    }

    #[test]
    fn matches_real_elements_blocks() {
        for text in [
            include_str!("../tests/data/functionary_dynafed_block.hex"),
            include_str!("../tests/data/functionary_legacy_2of3_block.hex"),
        ] {
            let b = block(text);
            assert!(!b.txdata.is_empty());
            assert_eq!(merkle_root(&b.txdata), b.header.merkle_root);
        }
    }

    #[test]
    fn odd_levels_pair_the_last_node_with_itself() {
        let b = block(include_str!("../tests/data/functionary_dynafed_block.hex"));
        let tx = b.txdata[0].clone();
        let three = vec![tx.clone(), tx.clone(), tx.clone()];
        let four = vec![tx.clone(), tx.clone(), tx.clone(), tx];
        assert_eq!(merkle_root(&three), merkle_root(&four));
        assert_eq!(merkle_root(&[]), TxMerkleNode::from_byte_array([0u8; 32]));
    }

    #[test]
    fn agrees_with_rust_bitcoin_for_1_to_17_leaves() {
        use bitcoin::hashes::Hash as _;
        for n in 1u8..=17 {
            let leaves: Vec<[u8; 32]> = (0..n)
                .map(|i| [i.wrapping_mul(37).wrapping_add(1); 32])
                .collect();
            let txids = leaves.iter().map(|l| bitcoin::Txid::from_byte_array(*l));
            let expected: bitcoin::Txid = bitcoin::merkle_tree::calculate_root(txids).unwrap();
            assert_eq!(
                merkle_root_of(leaves),
                expected.to_byte_array(),
                "{n} leaves"
            );
        }
    }
}
