//! A node whose PeerId is not in the federation config cannot get a message processed: it dials every member
//! (it lists them in its own config), the members deny the connection when it is established, before any
//! protocol stream, and the federation's chain is unaffected.

use std::time::Duration;

use tests::TestFederation;

#[test]
fn unknown_peer_is_denied_before_any_message_is_processed() -> anyhow::Result<()> {
    let mut fed = TestFederation::create(4, 3, Duration::from_millis(200))?;
    fed.start_all()?;
    fed.wait_height(&[0, 1, 2, 3], 3, Duration::from_secs(120))?;

    // The rogue: a real functionaryd with its own token and identity, whose federation config also lists the
    // four real members (so it dials them and broadcasts to them), with a majority threshold over 5.
    let mut rogue = TestFederation::create(1, 1, Duration::from_millis(200))?;
    let rogue_peer = rogue.layout.members[0].peer_id.clone();
    let mut config =
        deploy::setup::federation_toml(&rogue.layout).replace("threshold = 1", "threshold = 3");
    for m in &fed.layout.members {
        config.push_str(&format!(
            "\n[[members]]\nname = \"real-{}\"\nblock_pubkey = \"{}\"\npeer_id = \"{}\"\naddress = \"/ip4/127.0.0.1/tcp/{}\"\n",
            m.name, m.block_pubkey, m.peer_id, m.p2p_port
        ));
    }
    std::fs::write(rogue.layout.datadir(0).join("federation.toml"), &config)?;
    // A rogue skips the ceremony: it marks its own config as verified.
    std::fs::write(
        rogue
            .layout
            .datadir(0)
            .join(functionary::ceremony::VERIFIED_FILE),
        functionary::config::FederationConfig::from_toml_str(&config)?.config_hash(),
    )?;
    rogue.start(0)?;

    let before = fed.height(0).unwrap_or(0);
    // Give the rogue time to dial (with backoff) several times.
    std::thread::sleep(Duration::from_secs(4));
    let peers = rogue.rpc(0, "getpeerinfo", &[])?;
    let peers = peers.as_array().cloned().unwrap_or_default();
    assert_eq!(
        peers.len(),
        4,
        "the rogue lists the 4 members it dials: {peers:?}"
    );
    for p in &peers {
        assert_eq!(
            p["messages_in"], 0,
            "a member sent the rogue a message: {p}"
        );
    }
    for i in 0..4 {
        let log = fed.log(i);
        assert!(
            log.lines()
                .any(|l| l.contains("denied connection") && l.contains(&rogue_peer)),
            "member {i} did not log denying {rogue_peer}"
        );
        assert!(
            !log.lines()
                .any(|l| l.contains("peer connected") && l.contains(&rogue_peer)),
            "member {i} reported the rogue as connected"
        );
        assert!(
            !log.lines()
                .any(|l| l.contains(&rogue_peer) && l.contains("message")),
            "member {i} handled a message from the rogue"
        );
        let info = fed.rpc(i, "getpeerinfo", &[])?;
        assert!(
            !info.to_string().contains(&rogue_peer),
            "member {i}'s getpeerinfo mentions the rogue: {info}"
        );
    }
    // The federation kept going and agrees with itself.
    fed.wait_height(&[0, 1, 2, 3], before + 5, Duration::from_secs(120))?;
    fed.assert_same_chain(&[0, 1, 2, 3], before + 5)?;
    Ok(())
}
