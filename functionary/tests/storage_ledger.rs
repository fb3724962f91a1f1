//! The ledger half of the block store on a real RocksDB: the UTXO set, transaction index, peg-out records and
//! totals change with each block in the same synced batch, survive SIGKILL at any point consistent with the
//! stored tip, and a version-1 store is upgraded by replaying its blocks.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chain::ledger::block_utxo_changes;
use elements::confidential::{Asset, Nonce, Value};
use elements::{
    Block, BlockHeader, LockTime, OutPoint, Script, Sequence, Transaction, TxIn, TxOut,
    TxOutWitness,
};
use functionary::storage::BlockStore;
use rand::Rng;

const CHILD_DIR_ENV: &str = "FUNCTIONARY_LEDGER_CRASH_CHILD_DIR";
const COINS: u64 = 1_000_000_000;

fn keys() -> Vec<secp256k1::PublicKey> {
    (1..=4u8)
        .map(|i| {
            secp256k1::SecretKey::from_slice(&[i; 32])
                .expect("key")
                .public_key(secp256k1::SECP256K1)
        })
        .collect()
}

fn owner_script(tag: u8) -> Script {
    let mut program = vec![0x00, 0x14];
    program.extend([tag; 20]);
    Script::from(program)
}

fn params() -> chain::FederationParams {
    chain::FederationParams::new("storage-ledger-test", keys(), 3, 1_700_000_000)
        .expect("params")
        .with_initial_coins(chain::InitialCoins {
            amount: COINS,
            script_pubkey: owner_script(1),
        })
        .expect("coins")
}

fn output(params: &chain::FederationParams, value: u64, script: Script) -> TxOut {
    TxOut {
        asset: Asset::Explicit(params.policy_asset()),
        value: Value::Explicit(value),
        nonce: Nonce::Null,
        script_pubkey: script,
        witness: TxOutWitness::default(),
    }
}

/// A (storage-level, unsigned) transaction spending `coin` into two outputs, one a peg-out when `pegout`.
fn spend(
    params: &chain::FederationParams,
    coin: OutPoint,
    value: u64,
    tag: u8,
    pegout: bool,
) -> Transaction {
    let mut outputs = vec![output(params, value - 1_000, owner_script(tag))];
    if pegout {
        let destination = bitcoin::ScriptBuf::from_bytes(vec![
            0x00, 0x14, tag, tag, tag, tag, tag, tag, tag, tag, tag, tag, tag, tag, tag, tag, tag,
            tag, tag, tag, tag, tag,
        ]);
        let script = elements::script::Builder::new()
            .push_opcode(elements::opcodes::all::OP_RETURN)
            .push_slice(&[0x06u8; 32])
            .push_slice(destination.as_bytes())
            .into_script();
        outputs.push(output(params, 500, script));
    }
    outputs.push(output(
        params,
        if pegout { 500 } else { 1_000 },
        Script::new(),
    ));
    Transaction {
        version: 2,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: coin,
            is_pegin: false,
            script_sig: Script::new(),
            sequence: Sequence::MAX,
            asset_issuance: Default::default(),
            witness: Default::default(),
        }],
        output: outputs,
    }
}

/// The next block on `parent` spending `coin` (and returning the new coin and its value).
fn next_block(
    params: &chain::FederationParams,
    parent: &BlockHeader,
    coin: OutPoint,
    value: u64,
) -> (Block, OutPoint, u64) {
    let height = parent.height + 1;
    let mut block = chain::build_block(params, parent, parent.time + 1);
    let tx = spend(
        params,
        coin,
        value,
        (height % 200) as u8 + 2,
        height.is_multiple_of(3),
    );
    let next = OutPoint::new(tx.txid(), 0);
    block.txdata.push(tx);
    block.header.merkle_root = chain::merkle_root(&block.txdata);
    (block, next, value - 1_000)
}

/// The UTXO set as stored, and as a replay of the stored blocks yields.
fn stored_and_replayed(store: &BlockStore) -> (BTreeMap<OutPoint, u32>, BTreeMap<OutPoint, u32>) {
    let mut stored = BTreeMap::new();
    store
        .for_each_utxo(|outpoint, _| {
            stored.insert(*outpoint, 0);
        })
        .expect("iterate utxos");
    for outpoint in stored.clone().keys() {
        let utxo = store
            .utxo(outpoint)
            .expect("read")
            .expect("listed utxo exists");
        stored.insert(*outpoint, utxo.height);
    }
    let (tip, _) = store.tip().expect("tip");
    let mut replayed = BTreeMap::new();
    for height in 0..=tip {
        let block = store.block_at(height).expect("read").expect("stored block");
        let changes = block_utxo_changes(&block);
        for outpoint in changes.spent {
            assert!(
                replayed.remove(&outpoint).is_some(),
                "block {height} spends a missing {outpoint}"
            );
        }
        for (outpoint, utxo) in changes.created {
            replayed.insert(outpoint, utxo.height);
        }
    }
    (stored, replayed)
}

#[test]
fn blocks_change_the_utxo_set_index_and_pegouts_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let params = params();
    let store = BlockStore::open(dir.path()).expect("open");
    let genesis = params.genesis_block();
    store.init_genesis(&genesis).expect("genesis");
    let genesis_coin = OutPoint::new(genesis.txdata[0].txid(), 1);
    let coin = store
        .utxo(&genesis_coin)
        .expect("read")
        .expect("genesis coins are spendable");
    assert_eq!(coin.txout.value, Value::Explicit(COINS));
    assert!(!coin.is_coinbase, "genesis outputs are not coinbase-locked");
    assert_eq!(store.utxo_stats().expect("stats").count, 1);

    // Blocks 1..=3 (block 3 has a peg-out) in one batch, then block 4 alone.
    let mut parent = genesis.header.clone();
    let (mut coin, mut value) = (genesis_coin, COINS);
    let mut batch = Vec::new();
    for _ in 0..3 {
        let (block, next, left) = next_block(&params, &parent, coin, value);
        parent = block.header.clone();
        (coin, value) = (next, left);
        batch.push(block);
    }
    store.put_blocks(&batch).expect("batch");
    let (block4, coin4, _) = next_block(&params, &parent, coin, value);
    store.put_block(&block4).expect("block 4");

    assert!(
        store.utxo(&genesis_coin).expect("read").is_none(),
        "spent genesis coin gone"
    );
    assert!(
        store.utxo(&coin).expect("read").is_none(),
        "coin of block 3 spent by block 4"
    );
    let latest = store.utxo(&coin4).expect("read").expect("block 4's output");
    assert_eq!(
        (latest.height, latest.txout.value),
        (4, Value::Explicit(COINS - 4_000))
    );
    let stats = store.utxo_stats().expect("stats");
    assert_eq!(stats.count, 1, "exactly one coin left: {stats:?}");
    // genesis coinbase + 4 coinbases + 4 spends
    assert_eq!(stats.transactions, 9);
    let spend3 = &batch[2].txdata[1];
    let (found, height, hash) = store
        .transaction(&spend3.txid())
        .expect("read")
        .expect("indexed");
    assert_eq!(
        (found.txid(), height, hash),
        (spend3.txid(), 3, batch[2].block_hash())
    );
    let pegouts = store.pegouts().expect("pegouts");
    assert_eq!(pegouts.len(), 1, "{pegouts:?}");
    assert_eq!(pegouts[0].0, OutPoint::new(spend3.txid(), 1));
    assert_eq!(
        (
            pegouts[0].1.height,
            pegouts[0].1.value,
            pegouts[0].1.parent_genesis
        ),
        (3, 500, [0x06; 32])
    );
    let (stored, replayed) = stored_and_replayed(&store);
    assert_eq!(stored, replayed);

    // A block spending a coin that does not exist is refused and nothing of it is written.
    let (mut bad, _, _) = next_block(&params, &block4.header, genesis_coin, COINS);
    bad.header.merkle_root = chain::merkle_root(&bad.txdata);
    assert!(store.put_block(&bad).is_err());
    assert_eq!(store.tip().expect("tip").0, 4);
    assert_eq!(store.utxo_stats().expect("stats").count, 1);
}

#[test]
fn a_version_1_store_is_upgraded_by_replaying_its_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let params = params();
    let genesis = params.genesis_block();
    let coin_after;
    {
        let store = BlockStore::open(dir.path()).expect("open");
        store.init_genesis(&genesis).expect("genesis");
        let (block, next, _) = next_block(
            &params,
            &genesis.header,
            OutPoint::new(genesis.txdata[0].txid(), 1),
            COINS,
        );
        store.put_block(&block).expect("put");
        coin_after = next;
    }
    // Turn it into what version 1 wrote: no ledger column families' contents, schema 1.
    {
        let mut options = rocksdb::Options::default();
        options.create_missing_column_families(true);
        let names = [
            "blocks", "headers", "heights", "meta", "utxos", "txindex", "pegouts",
        ];
        let mut db = rocksdb::DB::open_cf(&options, dir.path(), names).expect("raw open");
        for name in ["utxos", "txindex", "pegouts"] {
            db.drop_cf(name).expect("drop cf");
        }
        let meta = db.cf_handle("meta").expect("meta");
        db.delete_cf(meta, b"utxo_stats").expect("delete stats");
        db.put_cf(
            meta,
            b"schema",
            postcard::to_allocvec(&1u32).expect("encode"),
        )
        .expect("schema 1");
    }
    let store = BlockStore::open(dir.path()).expect("reopen upgrades");
    assert!(
        store.utxo(&coin_after).expect("read").is_some(),
        "rebuilt UTXO set"
    );
    let (stored, replayed) = stored_and_replayed(&store);
    assert_eq!(stored, replayed);
    drop(store);
    // The upgrade is recorded: a second open does not rebuild (and still reads).
    let store = BlockStore::open(dir.path()).expect("reopen");
    assert_eq!(store.utxo_stats().expect("stats").count, 1);
}

#[test]
#[ignore = "helper run as a child process"]
fn ledger_crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let params = params();
    let store = BlockStore::open(Path::new(&dir)).expect("open");
    store
        .init_genesis(&params.genesis_block())
        .expect("genesis");
    // Find the coin the last stored block left (the only one in the set).
    let mut coin = None;
    store
        .for_each_utxo(|outpoint, _| coin = Some(*outpoint))
        .expect("iterate");
    let coin = coin.expect("one coin");
    let value = match store.utxo(&coin).expect("read").expect("coin").txout.value {
        Value::Explicit(v) => v,
        _ => unreachable!("explicit coins"),
    };
    let mut parent = store.tip_header().expect("tip");
    let (mut coin, mut value) = (coin, value);
    loop {
        // Alternate single blocks and batches of three.
        let mut blocks = Vec::new();
        for _ in 0..(1 + 2 * (parent.height % 2)) {
            let (block, next, left) = next_block(&params, &parent, coin, value);
            parent = block.header.clone();
            (coin, value) = (next, left);
            blocks.push(block);
        }
        store.put_blocks(&blocks).expect("put");
        println!("STORED {}", parent.height);
    }
}

#[test]
fn utxo_set_matches_the_stored_tip_after_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = rand::thread_rng();
    let mut last_tip = 0;
    for round in 0..5 {
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "ledger_crash_child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first: u32 = loop {
            let line = lines
                .next()
                .expect("child exited before storing")
                .expect("line");
            if let Some(h) = line.strip_prefix("STORED ") {
                break h.parse().expect("height");
            }
        };
        std::thread::sleep(Duration::from_millis(rng.gen_range(30..300)));
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        let acknowledged = lines
            .map_while(Result::ok)
            .filter_map(|l| {
                l.strip_prefix("STORED ")
                    .and_then(|h| h.parse::<u32>().ok())
            })
            .fold(first, u32::max);
        let store = BlockStore::open(dir.path()).expect("reopen");
        let (tip, _) = store.tip().expect("tip");
        assert!(
            tip >= acknowledged,
            "round {round}: acknowledged {acknowledged} lost (tip {tip})"
        );
        assert!(tip > last_tip, "round {round}: nothing written");
        let (stored, replayed) = stored_and_replayed(&store);
        assert_eq!(
            stored, replayed,
            "round {round}: UTXO set differs from the replay of blocks 0..={tip}"
        );
        assert_eq!(
            store.utxo_stats().expect("stats").count,
            stored.len() as u64,
            "round {round}"
        );
        eprintln!(
            "round {round}: killed after {acknowledged}; tip {tip}; utxos {}",
            stored.len()
        );
        last_tip = tip;
    }
}
