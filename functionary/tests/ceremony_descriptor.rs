//! The member descriptor's signed bytes are exactly the documented ones, and its proofs bind each key to its
//! purpose (software keys here; the SoftHSM path is in tests/ceremony.rs).

use functionary::ceremony::{DescriptorBody, MemberDescriptor, ProofKind};
use sha2::{Digest, Sha256};

fn secret(i: u8) -> secp256k1::SecretKey {
    secp256k1::SecretKey::from_slice(&[i; 32]).unwrap()
}

fn keypair(i: u8) -> libp2p::identity::Keypair {
    libp2p::identity::Keypair::ed25519_from_bytes([i; 32]).unwrap()
}

fn body() -> DescriptorBody {
    let p2p = keypair(9);
    let peer_id = p2p.public().to_peer_id();
    let p2p_pubkey = p2p.public().try_into_ed25519().unwrap().to_bytes();
    DescriptorBody {
        name: "alice".into(),
        block_pubkey: secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &secret(1)),
        peg_pubkey: secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &secret(2)),
        peer_id,
        p2p_pubkey,
        address: "/ip4/10.0.0.1/tcp/7101".parse().unwrap(),
    }
}

/// A named edit of a descriptor body.
type BodyEdit = (&'static str, Box<dyn Fn(&mut DescriptorBody)>);

fn lp(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

#[test]
fn digests_are_the_documented_bytes() {
    let b = body();
    let mut expected = Vec::new();
    lp(&mut expected, b"functionary/member-descriptor/v1");
    lp(&mut expected, b"alice");
    expected.extend_from_slice(&b.block_pubkey.serialize());
    expected.extend_from_slice(&b.peg_pubkey.serialize());
    lp(&mut expected, &b.peer_id.to_bytes());
    expected.extend_from_slice(&b.p2p_pubkey);
    // /ip4/10.0.0.1/tcp/7101: code 4, 4 address bytes, code 6, port big-endian.
    lp(&mut expected, &[0x04, 10, 0, 0, 1, 0x06, 0x1b, 0xbd]);
    assert_eq!(b.canonical_bytes(), expected);

    let body_hash = Sha256::digest(&expected);
    for (kind, purpose) in [
        (ProofKind::BlockKey, "block-signing"),
        (ProofKind::PegKey, "peg-wallet"),
        (ProofKind::P2pKey, "p2p"),
    ] {
        let mut pre = Vec::new();
        lp(&mut pre, b"functionary/member-descriptor/proof/v1");
        lp(&mut pre, purpose.as_bytes());
        pre.extend_from_slice(&body_hash);
        let digest: [u8; 32] = Sha256::digest(&pre).into();
        assert_eq!(b.proof_digest(kind), digest, "{purpose}");
    }
    assert_ne!(
        b.proof_digest(ProofKind::BlockKey),
        b.proof_digest(ProofKind::PegKey)
    );
}

#[test]
fn signed_descriptor_round_trips_and_binds_every_field() {
    let mut block = hsm::SoftwareSigner::new(secret(1));
    let mut peg = hsm::SoftwareSigner::new(secret(2));
    let descriptor = MemberDescriptor::sign(body(), &mut block, &mut peg, &keypair(9)).unwrap();
    descriptor.verify_proofs("d.json").unwrap();
    let json = descriptor.to_json();
    let back = MemberDescriptor::from_json(&json, "d.json").unwrap();
    assert_eq!(back, descriptor);
    back.verify_proofs("d.json").unwrap();

    // Every body field is covered by the proofs.
    let edits: Vec<BodyEdit> = vec![
        ("name", Box::new(|b| b.name = "mallory".into())),
        (
            "address",
            Box::new(|b| b.address = "/ip4/10.0.0.2/tcp/7101".parse().unwrap()),
        ),
        (
            "peg key",
            Box::new(|b| {
                b.peg_pubkey =
                    secp256k1::PublicKey::from_secret_key(secp256k1::SECP256K1, &secret(3))
            }),
        ),
    ];
    for (what, edit) in edits {
        let mut altered = descriptor.clone();
        edit(&mut altered.body);
        assert!(
            altered.verify_proofs("d.json").is_err(),
            "{what} edit not caught"
        );
    }
    // A PeerId that does not carry p2p_pubkey.
    let mut altered = descriptor.clone();
    altered.body.peer_id = keypair(8).public().to_peer_id();
    let err = altered.verify_proofs("d.json").unwrap_err().to_string();
    assert!(
        err.contains("p2p_pubkey") || err.contains("p2p_key"),
        "{err}"
    );

    // The signers must hold the declared keys.
    let mut wrong = hsm::SoftwareSigner::new(secret(4));
    assert!(MemberDescriptor::sign(body(), &mut wrong, &mut peg, &keypair(9)).is_err());

    // Unknown versions and unknown fields are refused.
    let err =
        MemberDescriptor::from_json(&json.replace("\"version\": 1", "\"version\": 2"), "d.json")
            .unwrap_err()
            .to_string();
    assert!(err.contains("version 2"), "{err}");
    let err = MemberDescriptor::from_json(
        &json.replace("\"version\": 1", "\"version\": 1, \"extra\": 0"),
        "d.json",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("extra"), "{err}");
}
