//! Catch-up validation of a long chain: 1,000 11-of-15 signed blocks validate in sequence with the right signers.
//! (Speed is measured by benchmarks, not asserted here: wall-clock bounds in tests are flaky on shared machines.)

mod common;

use chain::{attach_signatures, build_block, validate_final_block};
use common::{federation, member_signatures};
use std::time::Instant;

#[test]
fn validate_1000_eleven_of_fifteen_blocks() {
    let fed = federation("speed", 11, 15, 77);
    let members: Vec<usize> = (0..11).collect();
    let mut parent = fed.params.genesis_block().header;
    let mut chain = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let mut block = build_block(&fed.params, &parent, parent.time + 1);
        let sigs = member_signatures(&fed, &block.header, &members);
        attach_signatures(&fed.params, &mut block.header, &sigs).unwrap();
        parent = block.header.clone();
        chain.push(block);
    }
    let start = Instant::now();
    let mut parent = fed.params.genesis_block().header;
    for block in &chain {
        assert_eq!(
            validate_final_block(&fed.params, &parent, block),
            Ok(members.clone())
        );
        parent = block.header.clone();
    }
    let elapsed = start.elapsed();
    println!("validated 1000 11-of-15 blocks in {elapsed:?}");
}
