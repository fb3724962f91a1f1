//! Hostile input never panics: random and mutated witnesses, scripts and solutions fed to the proof verifiers.
//! Only "Ok or Err, no panic" is asserted, plus counters showing the loop reached both outcomes.

mod common;

use chain::proof::{verify_dynafed_proof, verify_legacy_proof};
use chain::{
    attach_signatures, block_signers, validate_final_block, validate_proposal,
    verify_member_signature,
};
use common::{data_hex, federation, member_signatures, set_witness, witness};
use elements::BlockExtData;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_bytes(rng: &mut StdRng, max_len: usize) -> Vec<u8> {
    let len = rng.gen_range(0..=max_len);
    (0..len).map(|_| rng.gen()).collect()
}

/// Flips, truncates, extends or replaces bytes of `item`.
fn mutate(rng: &mut StdRng, item: &mut Vec<u8>) {
    match rng.gen_range(0..5) {
        0 if !item.is_empty() => {
            let i = rng.gen_range(0..item.len());
            item[i] ^= 1 << rng.gen_range(0..8);
        }
        1 if !item.is_empty() => {
            let len = rng.gen_range(0..item.len());
            item.truncate(len);
        }
        2 => item.push(rng.gen()),
        3 if !item.is_empty() => {
            let i = rng.gen_range(0..item.len());
            item[i] = *[
                0x00, 0x01, 0x02, 0x21, 0x30, 0x4c, 0x4d, 0x4e, 0x80, 0xae, 0xff,
            ]
            .get(rng.gen_range(0..11))
            .unwrap();
        }
        _ => *item = random_bytes(rng, 80),
    }
}

#[test]
fn dynafed_verifier_survives_mutated_witnesses() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    let fed = federation("hostile", 3, 5, 42);
    let parent = fed.params.genesis_block().header;
    let mut block = chain::build_block(&fed.params, &parent, parent.time + 1);
    let sigs = member_signatures(&fed, &block.header, &[0, 2, 4]);
    attach_signatures(&fed.params, &mut block.header, &sigs).unwrap();
    let good = witness(&block.header).clone();
    let real: elements::Block =
        elements::encode::deserialize(&data_hex("functionary_dynafed_block.hex")).unwrap();
    let real_spk = real
        .header
        .dynafed_current()
        .unwrap()
        .signblockscript()
        .unwrap()
        .clone();

    let (mut ok, mut err) = (0usize, 0usize);
    for round in 0..3000 {
        let (mut header, spk) = if round % 2 == 0 {
            (block.header.clone(), fed.params.signblockscript().clone())
        } else {
            (real.header.clone(), real_spk.clone())
        };
        let mut w = if round % 2 == 0 {
            good.clone()
        } else {
            witness(&real.header).clone()
        };
        for _ in 0..rng.gen_range(1..4) {
            match rng.gen_range(0..6) {
                0 if !w.is_empty() => {
                    let i = rng.gen_range(0..w.len());
                    mutate(&mut rng, &mut w[i]);
                }
                1 if !w.is_empty() => {
                    w.remove(rng.gen_range(0..w.len()));
                }
                2 => {
                    let i = rng.gen_range(0..=w.len());
                    w.insert(i, random_bytes(&mut rng, 100));
                }
                3 if !w.is_empty() => {
                    // A mutated witness script, keeping the rest.
                    let last = w.len() - 1;
                    mutate(&mut rng, &mut w[last]);
                }
                4 if !w.is_empty() => {
                    // Reorder two items (may be a no-op when both picks are equal).
                    let (i, j) = (rng.gen_range(0..w.len()), rng.gen_range(0..w.len()));
                    w.swap(i, j);
                }
                _ => {}
            }
        }
        set_witness(&mut header, w);
        // Sometimes a random expected script or a tampered limit.
        let expected = if rng.gen_ratio(1, 10) {
            elements::Script::from(random_bytes(&mut rng, 40))
        } else {
            spk
        };
        if rng.gen_ratio(1, 10) {
            if let BlockExtData::Dynafed {
                current:
                    elements::dynafed::Params::Compact {
                        signblock_witness_limit,
                        ..
                    },
                ..
            } = &mut header.ext
            {
                *signblock_witness_limit = rng.gen();
            }
        }
        match verify_dynafed_proof(&header, &expected) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
        let _ = block_signers(&fed.params, &header);
        let candidate = elements::Block {
            header: header.clone(),
            txdata: block.txdata.clone(),
        };
        let _ = validate_final_block(&fed.params, &parent, &candidate);
        let _ = validate_proposal(&fed.params, &parent, &candidate);
        let sig = random_bytes(&mut rng, 80);
        let _ = verify_member_signature(&fed.params, &header, rng.gen_range(0..8), &sig);
    }
    assert!(err > 2000, "ok={ok} err={err}");
    assert!(
        ok > 0,
        "some mutations (e.g. limit changes or no-op swaps) keep a valid proof: ok={ok} err={err}"
    );
}

#[test]
fn legacy_verifier_survives_random_challenges_and_solutions() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    let real: elements::BlockHeader =
        elements::encode::deserialize(&data_hex("liquid_mainnet_header_1517039.hex")).unwrap();
    let BlockExtData::Proof {
        challenge,
        solution,
    } = real.ext.clone()
    else {
        panic!("legacy header")
    };
    let (mut ok, mut err) = (0usize, 0usize);
    for _ in 0..500 {
        let mut c = challenge.to_bytes();
        let mut s = solution.to_bytes();
        match rng.gen_range(0..4) {
            0 => mutate(&mut rng, &mut s),
            1 => mutate(&mut rng, &mut c),
            2 => s = random_bytes(&mut rng, 200),
            _ => {
                // Keep the real challenge, insert random pushes into the solution.
                let at = rng.gen_range(0..=s.len());
                let push = random_bytes(&mut rng, 20);
                let mut bytes = vec![push.len() as u8];
                bytes.extend(push);
                s.splice(at..at, bytes);
            }
        }
        let mut header = real.clone();
        header.ext = BlockExtData::Proof {
            challenge: elements::Script::from(c.clone()),
            solution: elements::Script::from(s),
        };
        // Verify against the mutated challenge itself, so the template and solution paths are reached.
        match verify_legacy_proof(&header, &elements::Script::from(c)) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    assert!(err > 400, "ok={ok} err={err}");
}

#[test]
fn random_scripts_as_witness_script_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0003);
    let fed = federation("hostile", 2, 3, 43);
    let parent = fed.params.genesis_block().header;
    let block = chain::build_block(&fed.params, &parent, parent.time);
    for _ in 0..2000 {
        // Random script shaped like the template half the time (right size, random bytes).
        let script = if rng.gen() {
            let n = rng.gen_range(1..=17);
            let mut s = random_bytes(&mut rng, 0);
            s.push(rng.gen_range(0x4f..0x62));
            for _ in 0..n {
                s.push(if rng.gen_ratio(9, 10) {
                    0x21
                } else {
                    rng.gen()
                });
                s.push(*[0x02u8, 0x03, 0x04, 0x00].get(rng.gen_range(0..4)).unwrap());
                s.extend((0..32).map(|_| rng.gen::<u8>()));
            }
            s.push(rng.gen_range(0x4f..0x62));
            s.push(if rng.gen_ratio(9, 10) {
                0xae
            } else {
                rng.gen()
            });
            s
        } else {
            random_bytes(&mut rng, 600)
        };
        let spk = {
            let mut v = vec![0x00, 0x20];
            v.extend_from_slice(elements::hashes::sha256::Hash::hash(&script).as_byte_array());
            elements::Script::from(v)
        };
        let mut header = block.header.clone();
        if let BlockExtData::Dynafed { current, .. } = &mut header.ext {
            *current = elements::dynafed::Params::Compact {
                signblockscript: spk.clone(),
                signblock_witness_limit: 100_000,
                elided_root: elements::dynafed::ElidedRoot::from_byte_array([0; 32]),
            };
        }
        let mut w: Vec<Vec<u8>> = (0..rng.gen_range(0..20))
            .map(|_| random_bytes(&mut rng, 75))
            .collect();
        if rng.gen() && !w.is_empty() {
            w[0].clear();
        }
        w.push(script);
        set_witness(&mut header, w);
        assert!(verify_dynafed_proof(&header, &spk).is_err());
    }
}
