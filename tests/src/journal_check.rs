//! Reading a member's signer journal from disk (through `hsm`'s own reader, so it follows format changes) and
//! checking that the member never signed two block hashes at one height.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// File name of the signer journal inside a member's data dir (see `functionary::daemon::startup`).
pub const JOURNAL_FILE: &str = "signer.journal";

/// Every block hash a member's journal shows it approved (or was overridden to sign), per height.
#[derive(Debug, Default, Clone)]
pub struct SignedBlocks {
    /// Height → block hashes (raw byte order) with a signing verdict.
    pub by_height: BTreeMap<u32, BTreeSet<[u8; 32]>>,
    /// Number of records read (every kind and verdict).
    pub records: u64,
}

impl SignedBlocks {
    /// Heights at which more than one distinct block hash was approved: each is a double-signature.
    pub fn double_signatures(&self) -> Vec<(u32, Vec<String>)> {
        self.by_height
            .iter()
            .filter(|(_, hashes)| hashes.len() > 1)
            .map(|(h, hashes)| (*h, hashes.iter().map(display_hash).collect()))
            .collect()
    }

    /// The highest height with a signing verdict.
    pub fn max_height(&self) -> Option<u32> {
        self.by_height.keys().next_back().copied()
    }
}

/// Block hashes print in Bitcoin's reversed hex, like RPC `getblockhash`.
pub fn display_hash(raw: &[u8; 32]) -> String {
    let mut rev = *raw;
    rev.reverse();
    hex::encode(rev)
}

/// Path of member `datadir`'s journal.
pub fn journal_path(datadir: &Path) -> PathBuf {
    datadir.join(JOURNAL_FILE)
}

/// Reads every record of the journal at `path` with `hsm::SignerJournal::open_with` (which verifies every
/// checksum and takes the journal's lock: the member must be stopped). A missing journal reads as empty without
/// creating one.
pub fn read_signed_blocks(path: &Path) -> anyhow::Result<SignedBlocks> {
    let mut out = SignedBlocks::default();
    if !path.exists() {
        return Ok(out);
    }
    let journal = hsm::SignerJournal::open_with(path, |_offset, record| {
        if let hsm::SignRequestRecord::Block { height, block_hash } = &record.request {
            if record.verdict.signs() {
                out.by_height
                    .entry(*height)
                    .or_default()
                    .insert(*block_hash);
            }
        }
        Ok(())
    })
    .with_context(|| format!("reading signer journal {}", path.display()))?;
    out.records = journal.record_count();
    Ok(out)
}

/// Reads the journal in `datadir` and fails naming the heights and hashes if the member signed two hashes at one
/// height.
pub fn assert_no_double_signature(member: &str, datadir: &Path) -> anyhow::Result<SignedBlocks> {
    let signed = read_signed_blocks(&journal_path(datadir))?;
    let doubles = signed.double_signatures();
    anyhow::ensure!(
        doubles.is_empty(),
        "DOUBLE SIGNATURE: member {member}'s journal approves several block hashes at one height: {doubles:?}"
    );
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsm::{JournalRecord, SignRequestRecord, SignerJournal, Verdict};

    fn block(height: u32, byte: u8) -> SignRequestRecord {
        SignRequestRecord::Block {
            height,
            block_hash: [byte; 32],
        }
    }

    #[test]
    fn finds_two_approved_hashes_at_one_height_and_ignores_refusals() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(JOURNAL_FILE);
        {
            let mut journal = SignerJournal::open(&path)?;
            journal.append(&JournalRecord::new(block(4, 1), Verdict::Approved, "ok", 1))?;
            journal.append(&JournalRecord::new(
                block(4, 1),
                Verdict::Approved,
                "again",
                2,
            ))?;
            journal.append(&JournalRecord::new(block(5, 2), Verdict::Refused, "no", 3))?;
            journal.append(&JournalRecord::new(block(5, 3), Verdict::Approved, "ok", 4))?;
        }
        let clean = assert_no_double_signature("alice", dir.path())?;
        assert_eq!(clean.records, 4);
        assert_eq!(clean.max_height(), Some(5));
        assert_eq!(clean.by_height.get(&5).map(BTreeSet::len), Some(1));

        {
            let mut journal = SignerJournal::open(&path)?;
            journal.append(&JournalRecord::new(
                block(5, 9),
                Verdict::Approved,
                "bad",
                5,
            ))?;
        }
        let err = assert_no_double_signature("alice", dir.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("DOUBLE SIGNATURE"), "{err}");
        assert!(err.contains(&display_hash(&[9; 32])), "{err}");
        Ok(())
    }

    #[test]
    fn a_missing_journal_reads_empty_and_is_not_created() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let signed = read_signed_blocks(&dir.path().join(JOURNAL_FILE))?;
        assert_eq!(signed.records, 0);
        assert!(!dir.path().join(JOURNAL_FILE).exists());
        Ok(())
    }
}
