//! Every member judges a proposal's transactions against its own UTXO set (RocksDB on disk) before it prevotes:
//! a block with a double spend is refused by every member, the same block without it is prevoted by every member.

use std::sync::Arc;

use blocksigner::{
    Consensus, ConsensusEvent, ConsensusMessage, Effect, Federation, Input, Proposal, Rejection,
    VoteKind,
};
use elements::confidential::{Asset, Nonce, Value};
use elements::secp256k1_zkp::{All, Message, Secp256k1};
use elements::sighash::SighashCache;
use elements::{
    EcdsaSighashType, LockTime, OutPoint, Script, Sequence, Transaction, TxIn, TxInWitness, TxOut,
    TxOutWitness,
};
use functionary::ledger::{ChainState, LedgerBlockContent};
use functionary::storage::BlockStore;

const N: usize = 4;
const M: usize = 3;
const GENESIS_TIME: u32 = 1_700_000_000;
const START_MS: u64 = GENESIS_TIME as u64 * 1_000 + 10_000 + 37;
const TIME: u32 = (START_MS / 1000 + 1) as u32;
const COINS: u64 = 10_000_000_000;

fn secp() -> &'static Secp256k1<All> {
    static SECP: std::sync::LazyLock<Secp256k1<All>> = std::sync::LazyLock::new(Secp256k1::new);
    &SECP
}

fn p2p_secret(member: usize) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[u8::try_from(member + 100).expect("small"); 32])
}

struct Wallet {
    secret: secp256k1::SecretKey,
    public: bitcoin::PublicKey,
}

impl Wallet {
    fn new() -> Self {
        let secret = secp256k1::SecretKey::from_slice(&[7u8; 32]).expect("key");
        Wallet {
            secret,
            public: bitcoin::PublicKey::new(secret.public_key(secp256k1::SECP256K1)),
        }
    }

    fn script(&self) -> Script {
        Script::new_v0_wpkh(&self.public.wpubkey_hash().expect("compressed"))
    }

    /// Spends `coin` (explicit `value`) to `to` minus `fee`, signed.
    fn spend(
        &self,
        asset: elements::AssetId,
        coin: OutPoint,
        value: u64,
        to: u64,
        fee: u64,
    ) -> Transaction {
        let out = |value: u64, script: Script| TxOut {
            asset: Asset::Explicit(asset),
            value: Value::Explicit(value),
            nonce: Nonce::Null,
            script_pubkey: script,
            witness: TxOutWitness::default(),
        };
        let mut tx = Transaction {
            version: 2,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: coin,
                is_pegin: false,
                script_sig: Script::new(),
                sequence: Sequence::MAX,
                asset_issuance: Default::default(),
                witness: TxInWitness::default(),
            }],
            output: vec![
                out(to, self.script()),
                out(value - to - fee, self.script()),
                out(fee, Script::new()),
            ],
        };
        let code = Script::new_p2pkh(&self.public.pubkey_hash());
        let sighash = SighashCache::new(&tx).segwitv0_sighash(
            0,
            &code,
            Value::Explicit(value),
            EcdsaSighashType::All,
        );
        let msg = Message::from_digest_slice(sighash.as_ref()).expect("32 bytes");
        let sk = elements::secp256k1_zkp::SecretKey::from_slice(&self.secret.secret_bytes())
            .expect("key");
        let mut sig = secp().sign_ecdsa(&msg, &sk).serialize_der().to_vec();
        sig.push(0x01);
        tx.input[0].witness.script_witness = vec![sig, self.public.to_bytes()].into();
        tx
    }
}

/// The coin the test genesis pays to the wallet.
fn genesis_coin(federation: &Federation) -> OutPoint {
    OutPoint::new(federation.params.genesis_block().txdata[0].txid(), 1)
}

/// A ledger over a fresh store holding the federation's genesis.
fn chain_state(federation: &Federation) -> (tempfile::TempDir, Arc<BlockStore>, Arc<ChainState>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(BlockStore::open(&dir.path().join("blocks")).expect("store"));
    store
        .init_genesis(&federation.params.genesis_block())
        .expect("genesis");
    let (state, _relay) = ChainState::new(store.clone(), &federation.params, Default::default());
    (dir, store, state)
}

struct Member {
    consensus: Consensus,
    _dir: tempfile::TempDir,
}

fn federation(wallet: &Wallet) -> Arc<Federation> {
    let keys = (0..N)
        .map(|i| {
            let mut bytes = [0x11u8; 32];
            bytes[31] = u8::try_from(i + 1).expect("small");
            secp256k1::SecretKey::from_slice(&bytes)
                .expect("key")
                .public_key(secp256k1::SECP256K1)
        })
        .collect();
    let params = chain::FederationParams::new("ledger-consensus-test", keys, M, GENESIS_TIME)
        .expect("params")
        .with_initial_coins(chain::InitialCoins {
            amount: COINS,
            script_pubkey: wallet.script(),
        })
        .expect("coins");
    Arc::new(Federation {
        params,
        p2p_keys: (0..N).map(|i| p2p_secret(i).verifying_key()).collect(),
        interval_ms: 1_000,
        round_timeout_ms: 250,
    })
}

fn member(federation: &Arc<Federation>, index: usize) -> Member {
    let (dir, _store, state) = chain_state(federation);
    let genesis = federation.params.genesis_block();
    let mut consensus = Consensus::new(
        Arc::clone(federation),
        index,
        p2p_secret(index),
        genesis.header,
        None,
        None,
    )
    .with_content(Box::new(LedgerBlockContent(state)));
    consensus.handle(Input::Tick { now_ms: START_MS });
    Member {
        consensus,
        _dir: dir,
    }
}

/// A child of genesis carrying `transactions`, its coinbase claiming their fees.
fn block_with(
    federation: &Federation,
    transactions: Vec<Transaction>,
    fees: u64,
) -> elements::Block {
    let params = &federation.params;
    let genesis = params.genesis_block();
    let mut block = chain::build_block(params, &genesis.header, TIME);
    block.txdata.extend(transactions);
    let ctx = functionary::ledger::LedgerRules::new(params).context(1, TIME, genesis.header.time);
    chain::ledger::finish_coinbase(&mut block, &ctx, fees);
    block.header.merkle_root = chain::merkle_root(&block.txdata);
    block
}

fn proposal(federation: &Federation, block: elements::Block) -> ConsensusMessage {
    // The proposer of height 1, round 0 is member (1 + 0) mod 4 = 1.
    ConsensusMessage::Proposal(Proposal::sign(
        &federation.params.genesis_hash(),
        1,
        0,
        None,
        block,
        START_MS,
        &p2p_secret(1),
    ))
}

fn prevote_for(effects: &[Effect]) -> Option<Option<elements::BlockHash>> {
    effects.iter().find_map(|e| match e {
        Effect::Broadcast(ConsensusMessage::Vote(v)) if v.kind == VoteKind::Prevote => {
            Some(v.block_hash)
        }
        _ => None,
    })
}

fn invalid_proposal_reason(effects: &[Effect]) -> Option<String> {
    effects.iter().find_map(|e| match e {
        Effect::Report(ConsensusEvent::Rejected {
            reason: Rejection::InvalidProposal(r),
            ..
        }) => Some(r.clone()),
        _ => None,
    })
}

#[test]
fn a_block_with_a_double_spend_is_refused_by_every_member() {
    let wallet = Wallet::new();
    let federation = federation(&wallet);
    let asset = federation.params.policy_asset();
    let coin = genesis_coin(&federation);
    let first = wallet.spend(asset, coin, COINS, 1_000_000, 500);
    let second = wallet.spend(asset, coin, COINS, 2_000_000, 500);
    let bad = block_with(&federation, vec![first.clone(), second], 1_000);
    for index in [0, 2, 3] {
        let mut m = member(&federation, index);
        let effects = m.consensus.handle(Input::Message {
            from: 1,
            message: proposal(&federation, bad.clone()),
        });
        let reason = invalid_proposal_reason(&effects)
            .unwrap_or_else(|| panic!("member {index} accepted: {effects:?}"));
        assert!(
            reason.contains("bad-txns-inputs-missingorspent"),
            "member {index}: {reason}"
        );
        assert_eq!(
            prevote_for(&effects),
            Some(None),
            "member {index} must prevote nil: {effects:?}"
        );
    }
}

#[test]
fn the_same_block_without_the_double_spend_is_prevoted_by_every_member() {
    let wallet = Wallet::new();
    let federation = federation(&wallet);
    let asset = federation.params.policy_asset();
    let coin = genesis_coin(&federation);
    let first = wallet.spend(asset, coin, COINS, 1_000_000, 500);
    let good = block_with(&federation, vec![first], 500);
    let hash = good.block_hash();
    for index in [0, 2, 3] {
        let mut m = member(&federation, index);
        let effects = m.consensus.handle(Input::Message {
            from: 1,
            message: proposal(&federation, good.clone()),
        });
        assert_eq!(
            invalid_proposal_reason(&effects),
            None,
            "member {index}: {effects:?}"
        );
        assert_eq!(
            prevote_for(&effects),
            Some(Some(hash)),
            "member {index}: {effects:?}"
        );
    }
}

#[test]
fn a_coinbase_claiming_more_than_the_fees_is_refused() {
    let wallet = Wallet::new();
    let federation = federation(&wallet);
    let asset = federation.params.policy_asset();
    let coin = genesis_coin(&federation);
    let first = wallet.spend(asset, coin, COINS, 1_000_000, 500);
    let greedy = block_with(&federation, vec![first], 501);
    let mut m = member(&federation, 0);
    let effects = m.consensus.handle(Input::Message {
        from: 1,
        message: proposal(&federation, greedy),
    });
    assert!(invalid_proposal_reason(&effects).is_some(), "{effects:?}");
    assert_eq!(prevote_for(&effects), Some(None));
}

/// A chain of `n` spends inside one block, each spending the previous one's first output.
fn chained_spends(wallet: &Wallet, federation: &Federation, n: usize) -> (Vec<Transaction>, u64) {
    let asset = federation.params.policy_asset();
    let mut coin = genesis_coin(federation);
    let mut value = COINS;
    let mut txs = Vec::new();
    for _ in 0..n {
        let pay = value - 10_000 - 500;
        let tx = wallet.spend(asset, coin, value, pay, 500);
        coin = OutPoint::new(tx.txid(), 0);
        value = pay;
        txs.push(tx);
    }
    (txs, 500 * n as u64)
}

#[test]
fn blocks_verified_on_several_threads_keep_their_verdicts() {
    let wallet = Wallet::new();
    let federation = federation(&wallet);
    let (_dir, _store, state) = chain_state(&federation);

    let (txs, fees) = chained_spends(&wallet, &federation, 12);
    let good = block_with(&federation, txs.clone(), fees);
    assert_eq!(state.validate_block(&good), Ok(()));

    // One bad signature in the middle: refused, even though its neighbours were verified (and cached) in parallel.
    let mut bad_txs = txs;
    let witness = &mut bad_txs[7].input[0].witness.script_witness;
    let mut items: Vec<Vec<u8>> = witness.iter().map(|item| item.to_vec()).collect();
    items[0][10] ^= 1;
    *witness = items.into();
    let bad = block_with(&federation, bad_txs, fees);
    let reason = state
        .validate_block(&bad)
        .expect_err("a bad signature must be refused");
    assert!(
        matches!(reason, blocksigner::ContentError::Invalid(_)),
        "{reason:?}"
    );
    assert!(
        reason
            .to_string()
            .contains("mandatory-script-verify-flag-failed"),
        "{reason}"
    );
}

#[test]
fn the_next_block_is_validated_on_a_final_block_not_stored_yet() {
    // Consensus finalizes height 1 and, in the same step, judges a proposal for height 2 before the daemon has
    // stored block 1: the ledger must see block 1's transactions as its parent's.
    let wallet = Wallet::new();
    let federation = federation(&wallet);
    let (_dir, store, state) = chain_state(&federation);
    let (txs, _) = chained_spends(&wallet, &federation, 2);
    let block1 = block_with(&federation, vec![txs[0].clone()], 500);
    assert_eq!(state.validate_block(&block1), Ok(()));
    state.block_finalized(&block1);

    // Block 2 spends block 1's output.
    let mut block2 = chain::build_block(&federation.params, &block1.header, TIME + 1);
    block2.txdata.push(txs[1].clone());
    let ctx = functionary::ledger::LedgerRules::new(&federation.params).context(2, TIME + 1, TIME);
    chain::ledger::finish_coinbase(&mut block2, &ctx, 500);
    block2.header.merkle_root = chain::merkle_root(&block2.txdata);
    assert_eq!(
        state.validate_block(&block2),
        Ok(()),
        "judged on the pending block 1"
    );

    // A block 2 double-spending what block 1 spent is invalid (not merely "unavailable").
    let conflicting = wallet.spend(
        federation.params.policy_asset(),
        genesis_coin(&federation),
        COINS,
        7_000_000,
        500,
    );
    let mut bad2 = chain::build_block(&federation.params, &block1.header, TIME + 1);
    bad2.txdata.push(conflicting);
    chain::ledger::finish_coinbase(&mut bad2, &ctx, 500);
    bad2.header.merkle_root = chain::merkle_root(&bad2.txdata);
    assert!(
        matches!(
            state.validate_block(&bad2),
            Err(blocksigner::ContentError::Invalid(_))
        ),
        "double spend of a pending block's input"
    );

    // Once block 1 is stored the pending entry goes and the same answers hold from the store alone (a fresh
    // ledger over the same store: nothing validated before, nothing pending).
    store.put_block(&block1).expect("store block 1");
    state.blocks_stored(std::slice::from_ref(&block1));
    let (fresh, _relay) = ChainState::new(store.clone(), &federation.params, Default::default());
    assert_eq!(fresh.validate_block(&block2), Ok(()));
    assert!(matches!(
        fresh.validate_block(&bad2),
        Err(blocksigner::ContentError::Invalid(_))
    ));

    // A block on an unknown parent cannot be judged here: unavailable, not invalid.
    let mut orphan = block2.clone();
    orphan.header.prev_blockhash = elements::BlockHash::from_byte_array([9; 32]);
    assert!(matches!(
        state.validate_block(&orphan),
        Err(blocksigner::ContentError::Unavailable(_))
    ));
}
