//! Multi-process federations on loopback: real functionaryd processes, SoftHSM tokens, RocksDB, libp2p, RPC.

use std::time::Duration;

use tests::TestFederation;

const FAST: Duration = Duration::from_millis(200);
const DEADLINE: Duration = Duration::from_secs(120);

fn all(n: usize) -> Vec<usize> {
    (0..n).collect()
}

#[test]
fn three_of_four_reaches_20_blocks_with_identical_valid_chains() -> anyhow::Result<()> {
    let mut fed = TestFederation::create(4, 3, FAST)?;
    fed.start_all()?;
    fed.wait_height(&all(4), 20, DEADLINE)?;
    fed.assert_same_chain(&all(4), 20)?;
    for i in all(4) {
        let signers = fed.verify_chain(i, 20)?;
        assert!(
            signers.iter().all(|s| s.len() >= 3),
            "member {i}: a block with fewer than 3 signers"
        );
    }
    // RPC shows the signers of a block by name, and the federation.
    let hash = fed.rpc(0, "getblockhash", &[serde_json::json!(5)])?;
    let block = fed.rpc(0, "getblock", &[hash, serde_json::json!(1)])?;
    assert_eq!(
        block["signers"].as_array().map(Vec::len),
        Some(3),
        "getblock signers: {block}"
    );
    let info = fed.rpc(1, "getfederationinfo", &[])?;
    assert_eq!(info["threshold"], 3);
    // Clean stop of every member.
    for i in all(4) {
        fed.stop(i)?;
    }
    Ok(())
}

#[test]
fn eleven_of_fifteen_reaches_20_blocks_with_identical_valid_chains() -> anyhow::Result<()> {
    let mut fed = TestFederation::create(15, 11, FAST)?;
    fed.start_all()?;
    fed.wait_height(&all(15), 20, Duration::from_secs(240))?;
    fed.assert_same_chain(&all(15), 20)?;
    for i in [0, 7, 14] {
        let signers = fed.verify_chain(i, 20)?;
        assert!(
            signers.iter().all(|s| s.len() >= 11),
            "member {i}: a block with fewer than 11 signers"
        );
    }
    Ok(())
}

#[test]
fn member_killed_with_sigkill_restarts_catches_up_and_never_forks() -> anyhow::Result<()> {
    let mut fed = TestFederation::create(4, 3, FAST)?;
    fed.start_all()?;
    fed.wait_height(&all(4), 5, DEADLINE)?;
    fed.kill9(2)?;
    let h = fed.height(0).unwrap_or(5);
    // The other three keep producing without it.
    fed.wait_height(&[0, 1, 3], h + 10, DEADLINE)?;
    fed.start(2)?;
    let target = fed.height(0).unwrap_or(h + 10) + 5;
    fed.wait_height(&all(4), target, DEADLINE)?;
    fed.assert_same_chain(&all(4), target)?;
    fed.verify_chain(2, target)?;
    Ok(())
}

#[test]
fn chain_continues_with_m_members_and_halts_below_m_then_resumes() -> anyhow::Result<()> {
    let mut fed = TestFederation::create(4, 3, FAST)?;
    fed.start_all()?;
    fed.wait_height(&all(4), 3, DEADLINE)?;

    // n - m = 1 member down: blocks continue.
    fed.stop(3)?;
    let h = fed.height(0).unwrap_or(3);
    fed.wait_height(&[0, 1, 2], h + 8, DEADLINE)?;

    // n - m + 1 = 2 members down: no block is produced.
    fed.stop(2)?;
    std::thread::sleep(Duration::from_secs(1)); // let in-flight blocks settle
    let frozen = fed.height(0).unwrap_or(0);
    std::thread::sleep(FAST * 15);
    assert_eq!(
        fed.height(0),
        Some(frozen),
        "a block was produced with fewer than m members up"
    );
    assert_eq!(
        fed.height(1),
        Some(frozen),
        "a block was produced with fewer than m members up"
    );
    // Nothing is corrupted: what is there is one valid chain.
    fed.assert_same_chain(&[0, 1], frozen)?;
    fed.verify_chain(0, frozen)?;

    // One member comes back: production resumes, and the returning member catches up.
    fed.start(2)?;
    fed.wait_height(&[0, 1, 2], frozen + 5, DEADLINE)?;
    fed.assert_same_chain(&[0, 1, 2], frozen + 5)?;
    fed.verify_chain(2, frozen + 5)?;
    Ok(())
}
