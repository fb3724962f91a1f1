//! BlockStore on a real RocksDB in a temp dir: genesis, appends, reopen, refusals, limits, locking, crash safety.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use elements::dynafed::Params;
use elements::{
    confidential, AssetId, Block, BlockExtData, BlockHash, BlockHeader, OutPoint, Script,
    Transaction, TxIn, TxMerkleNode, TxOut,
};
use functionary::storage::{BlockStore, StoreError};
use rand::Rng;

const GENESIS_TIME: u32 = 1_700_000_000;
/// Env var telling the child-process test where to write (see `crash_child_writer`).
const CRASH_DIR_ENV: &str = "FUNCTIONARY_STORAGE_CRASH_CHILD_DIR";

/// A coinbase-like transaction unique to `height` (so every block has its own merkle root).
fn coinbase(height: u32) -> Transaction {
    let script_sig = elements::script::Builder::new()
        .push_int(i64::from(height))
        .push_slice(b"functionary-test")
        .into_script();
    Transaction {
        version: 2,
        lock_time: elements::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::default(),
            script_sig,
            ..TxIn::default()
        }],
        output: vec![TxOut {
            asset: confidential::Asset::Explicit(AssetId::LIQUID_BTC),
            value: confidential::Value::Explicit(0),
            nonce: confidential::Nonce::Null,
            script_pubkey: Script::new(),
            witness: Default::default(),
        }],
    }
}

/// An Elements block with dynafed ext data (OP_TRUE signblockscript, a dummy witness): valid-looking, unsigned.
fn make_block(height: u32, prev: BlockHash, salt: u8) -> Block {
    let tx = coinbase(height);
    let merkle_root = TxMerkleNode::from_byte_array(tx.txid().to_byte_array());
    let signblockscript = elements::script::Builder::new()
        .push_opcode(elements::opcodes::OP_TRUE)
        .into_script();
    Block {
        header: BlockHeader {
            version: 0x2000_0000,
            prev_blockhash: prev,
            merkle_root,
            time: GENESIS_TIME + height + u32::from(salt),
            height,
            ext: BlockExtData::Dynafed {
                current: Params::Compact {
                    signblockscript,
                    signblock_witness_limit: 1416,
                    elided_root: elements::dynafed::ElidedRoot::from_byte_array([3; 32]),
                },
                proposed: Params::Null,
                signblock_witness: vec![vec![], vec![0x30; 71], vec![0x51]],
            },
        },
        txdata: vec![tx],
    }
}

fn genesis() -> Block {
    make_block(0, BlockHash::from_byte_array([0; 32]), 0)
}

fn child_of(parent: &BlockHeader) -> Block {
    make_block(parent.height + 1, parent.block_hash(), 0)
}

/// Checks that the store's tip, height index, blocks and headers are mutually consistent; returns the tip height.
fn check_consistent(store: &BlockStore) -> u32 {
    let (tip_height, tip_hash) = store.tip().unwrap();
    assert_eq!(store.tip_header().unwrap().block_hash(), tip_hash);
    let mut prev = BlockHash::from_byte_array([0; 32]);
    for height in 0..=tip_height {
        let hash = store
            .block_hash_at(height)
            .unwrap()
            .unwrap_or_else(|| panic!("no hash at {height}"));
        let block = store
            .block(&hash)
            .unwrap()
            .unwrap_or_else(|| panic!("no block {hash}"));
        assert_eq!(block.block_hash(), hash);
        assert_eq!(block.header.height, height);
        assert_eq!(block.header.prev_blockhash, prev, "chain link at {height}");
        assert_eq!(store.block_at(height).unwrap().unwrap(), block);
        assert_eq!(store.header(&hash).unwrap().unwrap(), block.header);
        assert_eq!(store.height_of(&hash).unwrap(), Some(height));
        prev = hash;
    }
    assert_eq!(prev, tip_hash);
    assert_eq!(
        store.block_hash_at(tip_height + 1).unwrap(),
        None,
        "index beyond the tip"
    );
    assert_eq!(store.block_at(tip_height + 1).unwrap(), None);
    tip_height
}

#[test]
fn genesis_init_and_mismatch_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    assert!(matches!(store.tip(), Err(StoreError::NotInitialised)));
    assert!(matches!(
        store.put_block(&child_of(&genesis().header)),
        Err(StoreError::NotInitialised)
    ));

    let genesis = genesis();
    store.init_genesis(&genesis).unwrap();
    assert_eq!(store.tip().unwrap(), (0, genesis.block_hash()));
    assert_eq!(store.block_at(0).unwrap(), Some(genesis.clone()));
    // Same genesis again: fine (restart).
    store.init_genesis(&genesis).unwrap();

    let other = make_block(0, BlockHash::from_byte_array([0; 32]), 9);
    match store.init_genesis(&other) {
        Err(StoreError::GenesisMismatch { stored, expected }) => {
            assert_eq!(stored, genesis.block_hash());
            assert_eq!(expected, other.block_hash());
        }
        r => panic!("expected GenesisMismatch, got {r:?}"),
    }
    drop(store);

    // Also after reopening.
    let store = BlockStore::open(dir.path()).unwrap();
    assert!(matches!(
        store.init_genesis(&other),
        Err(StoreError::GenesisMismatch { .. })
    ));
    store.init_genesis(&genesis).unwrap();
    assert_eq!(store.tip().unwrap(), (0, genesis.block_hash()));

    // A "genesis" that is not at height 0 is refused.
    let dir2 = tempfile::tempdir().unwrap();
    let store2 = BlockStore::open(dir2.path()).unwrap();
    assert!(matches!(
        store2.init_genesis(&make_block(5, BlockHash::from_byte_array([0; 32]), 0)),
        Err(StoreError::InvalidGenesis { height: 5, .. })
    ));
}

#[test]
fn thousand_blocks_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut hashes = Vec::new();
    {
        let store = BlockStore::open(dir.path()).unwrap();
        let genesis = genesis();
        store.init_genesis(&genesis).unwrap();
        hashes.push(genesis.block_hash());
        let mut parent = genesis.header.clone();
        for _ in 1..=1000 {
            let block = child_of(&parent);
            store.put_block(&block).unwrap();
            hashes.push(block.block_hash());
            parent = block.header;
        }
        assert_eq!(store.tip().unwrap(), (1000, parent.block_hash()));
        assert!(store.size_on_disk() > 0);
    }
    let store = BlockStore::open(dir.path()).unwrap();
    store.init_genesis(&genesis()).unwrap();
    assert_eq!(check_consistent(&store), 1000);
    for (height, hash) in hashes.iter().enumerate() {
        assert_eq!(store.block_hash_at(height as u32).unwrap(), Some(*hash));
    }
    let unknown = make_block(3, BlockHash::from_byte_array([0; 32]), 200).block_hash();
    assert_eq!(store.block(&unknown).unwrap(), None);
    assert_eq!(store.header(&unknown).unwrap(), None);
    assert_eq!(store.height_of(&unknown).unwrap(), None);
}

#[test]
fn refuses_non_children_and_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    let genesis = genesis();
    store.init_genesis(&genesis).unwrap();
    let b1 = child_of(&genesis.header);
    store.put_block(&b1).unwrap();

    // Wrong parent at the right height.
    let wrong_prev = make_block(2, genesis.block_hash(), 0);
    match store.put_block(&wrong_prev) {
        Err(StoreError::NotChild {
            height: 2,
            tip_height: 1,
            tip_hash,
            ..
        }) => assert_eq!(tip_hash, b1.block_hash()),
        r => panic!("expected NotChild, got {r:?}"),
    }
    // Right parent, wrong height: skipping ahead is NotChild; claiming an already stored height is refused as an
    // overwrite.
    assert!(matches!(
        store.put_block(&make_block(3, b1.block_hash(), 0)),
        Err(StoreError::NotChild { height: 3, .. })
    ));
    assert!(matches!(
        store.put_block(&make_block(1, b1.block_hash(), 0)),
        Err(StoreError::AlreadyStored { height: 1, .. })
    ));
    // The same block again, and a competing block at an existing height: never overwritten.
    assert!(matches!(
        store.put_block(&b1),
        Err(StoreError::AlreadyStored { height: 1, .. })
    ));
    let competitor = make_block(1, genesis.block_hash(), 5);
    assert!(matches!(
        store.put_block(&competitor),
        Err(StoreError::AlreadyStored { height: 1, .. })
    ));
    assert_eq!(store.block(&competitor.block_hash()).unwrap(), None);
    assert!(matches!(
        store.put_block(&genesis),
        Err(StoreError::AlreadyStored { height: 0, .. })
    ));

    assert_eq!(store.tip().unwrap(), (1, b1.block_hash()));
    assert_eq!(check_consistent(&store), 1);
    let b2 = child_of(&b1.header);
    store.put_block(&b2).unwrap();
    assert_eq!(check_consistent(&store), 2);
}

#[test]
fn raw_blocks_from_respects_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    let genesis = genesis();
    store.init_genesis(&genesis).unwrap();
    let mut parent = genesis.header.clone();
    for _ in 0..20 {
        let block = child_of(&parent);
        store.put_block(&block).unwrap();
        parent = block.header;
    }
    let one = store.raw_blocks_from(0, 1, usize::MAX).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        elements::encode::deserialize::<Block>(&one[0]).unwrap(),
        genesis
    );
    let size = one[0].len();

    // Count limit.
    let five = store.raw_blocks_from(3, 5, usize::MAX).unwrap();
    assert_eq!(five.len(), 5);
    for (i, raw) in five.iter().enumerate() {
        let block: Block = elements::encode::deserialize(raw).unwrap();
        assert_eq!(block.header.height, 3 + i as u32);
        assert_eq!(
            *raw,
            elements::encode::serialize(&store.block_at(3 + i as u32).unwrap().unwrap())
        );
    }
    // Stops at the tip.
    assert_eq!(store.raw_blocks_from(18, 100, usize::MAX).unwrap().len(), 3);
    assert!(store
        .raw_blocks_from(21, 100, usize::MAX)
        .unwrap()
        .is_empty());
    assert!(store
        .raw_blocks_from(u32::MAX, 100, usize::MAX)
        .unwrap()
        .is_empty());
    assert!(store.raw_blocks_from(0, 0, usize::MAX).unwrap().is_empty());
    // Byte limit (blocks differ by at most a byte or two; allow for it), and at least one block always.
    let limited = store.raw_blocks_from(1, 100, 4 * size + 2).unwrap();
    assert!(
        limited.len() == 4 || limited.len() == 5,
        "{}",
        limited.len()
    );
    assert!(limited.iter().map(Vec::len).sum::<usize>() <= 4 * size + 2);
    assert_eq!(store.raw_blocks_from(1, 100, 1).unwrap().len(), 1);
    assert_eq!(store.raw_blocks_from(1, 100, 0).unwrap().len(), 1);
}

#[test]
fn second_open_of_the_same_dir_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlockStore::open(dir.path()).unwrap();
    store.init_genesis(&genesis()).unwrap();
    let err = BlockStore::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("locked") && text.contains(&dir.path().display().to_string()),
        "{text}"
    );

    // From another process as well.
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_child_open",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("CHILD-LOCKED"),
        "child did not see the lock: {stdout}"
    );

    drop(store);
    BlockStore::open(dir.path()).unwrap();
}

/// Child process of `second_open_of_the_same_dir_is_a_clear_error`.
#[test]
#[ignore = "helper run as a child process"]
fn lock_child_open() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    match BlockStore::open(Path::new(&dir)) {
        Err(StoreError::Locked { .. }) => println!("CHILD-LOCKED"),
        other => println!("CHILD-UNEXPECTED {other:?}"),
    }
}

#[test]
fn concurrent_readers_and_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(BlockStore::open(dir.path()).unwrap());
    store.init_genesis(&genesis()).unwrap();
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut stored = 0;
                for _ in 0..100 {
                    let parent = store.tip_header().unwrap();
                    match store.put_block(&child_of(&parent)) {
                        Ok(()) => stored += 1,
                        Err(StoreError::NotChild { .. } | StoreError::AlreadyStored { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                stored
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            for _ in 0..200 {
                let (height, hash) = store.tip().unwrap();
                assert_eq!(store.block_hash_at(height).unwrap(), Some(hash));
            }
        })
    };
    let total: u32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    reader.join().unwrap();
    assert!(total >= 100);
    assert_eq!(check_consistent(&store), total);
}

/// Child process of `crash_safety_under_sigkill`: appends blocks forever, printing each stored height.
#[test]
#[ignore = "helper run as a child process"]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let store = BlockStore::open(Path::new(&dir)).unwrap();
    store.init_genesis(&genesis()).unwrap();
    println!("CHILD-READY");
    let mut parent = store.tip_header().unwrap();
    loop {
        let block = child_of(&parent);
        store.put_block(&block).unwrap();
        println!("STORED {}", block.header.height);
        parent = block.header;
    }
}

#[test]
fn crash_safety_under_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    let mut last_tip = 0;
    for round in 0..5 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Wait until the child has stored its first block, then let it write for a random while.
        let first_stored: u32 = loop {
            let line = lines
                .next()
                .expect("child exited before storing a block")
                .unwrap();
            if let Some(height) = line.strip_prefix("STORED ") {
                break height.parse().unwrap();
            }
        };
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..400)));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: child was not killed");
        // Heights the child reported as stored (put_block returned) before it died.
        let max_reported = lines
            .map_while(Result::ok)
            .filter_map(|l| {
                l.strip_prefix("STORED ")
                    .and_then(|h| h.parse::<u32>().ok())
            })
            .fold(first_stored, u32::max);

        let store = BlockStore::open(dir.path()).unwrap();
        store.init_genesis(&genesis()).unwrap();
        let tip = check_consistent(&store);
        assert!(
            tip >= max_reported,
            "round {round}: acknowledged block {max_reported} lost (tip {tip})"
        );
        eprintln!(
            "round {round}: killed after acknowledged height {max_reported}; reopened tip {tip}"
        );
        assert!(tip >= last_tip, "round {round}: tip went backwards");
        assert!(tip > last_tip, "round {round}: child wrote nothing");
        last_tip = tip;
    }
}

#[test]
fn block_store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BlockStore>();
    assert_send_sync::<std::sync::Arc<BlockStore>>();
}
