//! The check the signer makes before a new block-signing decision: the consensus commit certificate (m precommits
//! for exactly this height and block, verified against the federation's p2p keys).

use std::sync::Arc;

/// Verifies `blocksigner::CommitCertificate` bytes for the signer.
pub struct ConsensusCertificateVerifier {
    federation: Arc<blocksigner::Federation>,
}

impl ConsensusCertificateVerifier {
    /// A verifier for this federation.
    pub fn new(federation: Arc<blocksigner::Federation>) -> Self {
        ConsensusCertificateVerifier { federation }
    }
}

impl hsm::CertificateVerifier for ConsensusCertificateVerifier {
    /// Ok if `certificate` decodes and carries m valid precommits for `(height, block_hash)`.
    fn verify(&self, height: u32, block_hash: [u8; 32], certificate: &[u8]) -> Result<(), String> {
        let certificate =
            blocksigner::CommitCertificate::decode(certificate).map_err(|e| e.to_string())?;
        let hash = elements::BlockHash::from_byte_array(block_hash);
        certificate
            .verify_for(&self.federation, height, &hash)
            .map_err(|e| e.to_string())
    }
}
