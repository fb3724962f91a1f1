//! [`ChainState`] as the RPC layer's ledger.

use chain::ledger::TxRejection;
use elements::{OutPoint, Transaction, Txid};

use super::ChainState;
use crate::rpc::ledger_source::{AcceptedInfo, LedgerRpcSource, MempoolEntryInfo, MempoolSummary};

fn accepted_info(tx: &Transaction, accepted: &chain::mempool::AcceptedTx) -> AcceptedInfo {
    AcceptedInfo {
        txid: accepted.txid,
        wtxid: tx.wtxid(),
        fee: accepted.fee,
        vsize: accepted.vsize,
    }
}

impl LedgerRpcSource for ChainState {
    fn submit(&self, tx: Transaction) -> Result<AcceptedInfo, TxRejection> {
        let wtxid = tx.wtxid();
        // The RPC server runs methods on blocking threads (`spawn_blocking`): validation may take its time here.
        let accepted = ChainState::submit(self, tx)?;
        Ok(AcceptedInfo {
            txid: accepted.txid,
            wtxid,
            fee: accepted.fee,
            vsize: accepted.vsize,
        })
    }

    fn test_accept(&self, tx: &Transaction) -> Result<AcceptedInfo, TxRejection> {
        let accepted = ChainState::test_accept(self, tx)?;
        Ok(accepted_info(tx, &accepted))
    }

    fn mempool_transaction(&self, txid: &Txid) -> Option<Transaction> {
        self.mempool().get(txid).cloned()
    }

    fn mempool_txids(&self) -> Vec<Txid> {
        self.mempool().txids()
    }

    fn mempool_entry(&self, txid: &Txid) -> Option<MempoolEntryInfo> {
        let mempool = self.mempool();
        let entry = mempool.entry(txid)?;
        Some(MempoolEntryInfo {
            fee: entry.fee,
            vsize: entry.vsize,
            weight: entry.weight,
            time_ms: entry.time_ms,
            depends: entry.depends.iter().copied().collect(),
            spent_by: entry.spent_by.iter().copied().collect(),
        })
    }

    fn mempool_summary(&self) -> MempoolSummary {
        let mempool = self.mempool();
        let info = mempool.info();
        MempoolSummary {
            size: info.size,
            bytes: usize::try_from(info.bytes).unwrap_or(usize::MAX),
            usage: usize::try_from(info.usage).unwrap_or(usize::MAX),
            total_fee: info.total_fee,
            max_usage: info.max_weight_total,
            min_fee_rate: info.min_fee_rate_now,
            min_relay_fee_rate: mempool.limits().min_relay_fee_rate,
        }
    }

    fn mempool_spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.mempool().spender_of(outpoint)
    }

    fn mempool_output(&self, outpoint: &OutPoint) -> Option<elements::TxOut> {
        let mempool = self.mempool();
        if mempool.spender_of(outpoint).is_some() {
            return None;
        }
        mempool
            .entry(&outpoint.txid)?
            .created_output(outpoint)
            .map(|utxo| utxo.txout.clone())
    }
}
