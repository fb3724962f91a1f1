//! Transaction rules: `check_transaction`, `validate_transaction` with explicit P2WPKH spends, lock times,
//! maturity, fees, peg-outs, peg-ins.

mod ledger_common;

use chain::ledger::{
    check_final, check_transaction, validate_transaction, verify_amounts, RefusePegins,
    TxRejection, MAX_MONEY,
};
use elements::confidential::{Asset, Nonce, Value};
use elements::secp256k1_zkp::{Generator, PedersenCommitment};
use elements::{LockTime, OutPoint, Script, Sequence, TxOut};
use ledger_common::*;

/// A 1-input P2WPKH spend of 100_000 L-BTC: 90_000 to key 2, 9_000 change, 1_000 fee. Returns (view, tx, spent).
fn simple_spend() -> (
    std::collections::HashMap<OutPoint, chain::ledger::Utxo>,
    elements::Transaction,
    Vec<TxOut>,
) {
    let owner = key(1);
    let (outpoint, utxo) = coin(9, 0, lbtc_out(p2wpkh(&owner), 100_000), 10, false);
    let spent = vec![utxo.txout.clone()];
    let mut t = tx(
        vec![input(outpoint)],
        vec![
            lbtc_out(p2wpkh(&key(2)), 90_000),
            lbtc_out(p2wpkh(&owner), 9_000),
            fee_out(1_000),
        ],
    );
    sign_all(&mut t, &[owner], &spent);
    (view(&[(outpoint, utxo)]), t, spent)
}

#[test]
fn explicit_p2wpkh_spend_validates_with_its_spent_created_and_fee() {
    let (view, t, _) = simple_spend();
    let validated = validate_transaction(&ctx(), &view, &RefusePegins, &t).expect("valid spend");
    assert_eq!(validated.txid, t.txid());
    assert_eq!(validated.fee, 1_000);
    assert_eq!(validated.weight, t.weight());
    assert_eq!(validated.vsize, t.weight().div_ceil(4));
    assert_eq!(validated.spent.len(), 1);
    assert_eq!(validated.spent[0].0, t.input[0].previous_output);
    // The fee output is not a UTXO; both paying outputs are, at the block's height and time.
    assert_eq!(validated.created.len(), 2);
    assert_eq!(validated.created[0].0, OutPoint::new(t.txid(), 0));
    assert_eq!(validated.created[1].0, OutPoint::new(t.txid(), 1));
    for (_, utxo) in &validated.created {
        assert_eq!(utxo.height, HEIGHT);
        assert_eq!(utxo.time, BLOCK_TIME);
        assert!(!utxo.is_coinbase);
    }
    assert!(validated.pegouts.is_empty() && validated.issuances.is_empty());
}

#[test]
fn a_bad_signature_is_refused_by_the_script_step() {
    let (view, mut t, _) = simple_spend();
    // Sign with the wrong key: everything else is valid, so only the scripts can refuse it.
    sign_p2wpkh(&mut t, 0, &key(3), Value::Explicit(100_000));
    let err = assert_reason(
        validate_transaction(&ctx(), &view, &RefusePegins, &t),
        "mandatory-script-verify-flag-failed",
    );
    assert!(matches!(err, TxRejection::Script { input: 0, .. }));
}

#[test]
fn empty_inputs_or_outputs_are_refused() {
    let (_, t, _) = simple_spend();
    let mut no_in = t.clone();
    no_in.input.clear();
    assert_reason(check_transaction(&no_in), "bad-txns-vin-empty");
    let mut no_out = t;
    no_out.output.clear();
    assert_reason(check_transaction(&no_out), "bad-txns-vout-empty");
}

#[test]
fn oversize_transaction_is_refused() {
    let (_, mut t, _) = simple_spend();
    t.output[0].script_pubkey = Script::from(vec![0x51; 1_000_001]);
    assert!(t.weight() > chain::MAX_BLOCK_WEIGHT);
    assert_reason(check_transaction(&t), "bad-txns-oversize");
}

#[test]
fn output_values_above_max_money_are_refused() {
    let (_, t, _) = simple_spend();
    let mut big = t.clone();
    big.output[0].value = Value::Explicit(MAX_MONEY + 1);
    assert_reason(check_transaction(&big), "bad-txns-vout-toolarge");
    let mut sum = t.clone();
    sum.output[0].value = Value::Explicit(MAX_MONEY);
    sum.output[1].value = Value::Explicit(MAX_MONEY);
    assert_reason(check_transaction(&sum), "bad-txns-txouttotal-toolarge");
    let mut exact = t;
    exact.output.truncate(1);
    exact.output[0].value = Value::Explicit(MAX_MONEY);
    check_transaction(&exact).expect("MAX_MONEY itself is in range");
}

#[test]
fn null_output_value_or_asset_is_refused() {
    let (_, t, _) = simple_spend();
    let mut null_value = t.clone();
    null_value.output[1].value = Value::Null;
    assert_reason(
        check_transaction(&null_value),
        "bad-txns-vout-amount-invalid",
    );
    let mut null_asset = t;
    null_asset.output[1].asset = Asset::Null;
    assert_reason(
        check_transaction(&null_asset),
        "bad-txns-vout-asset-invalid",
    );
}

#[test]
fn duplicate_inputs_are_refused() {
    let (_, mut t, _) = simple_spend();
    t.input.push(t.input[0].clone());
    assert_reason(check_transaction(&t), "bad-txns-inputs-duplicate");
}

#[test]
fn null_prevout_outside_a_coinbase_is_refused() {
    let (_, mut t, _) = simple_spend();
    t.input.push(input(OutPoint::null()));
    assert_reason(check_transaction(&t), "bad-txns-prevout-null");
}

#[test]
fn coinbase_shape_rules() {
    check_transaction(&coinbase(HEIGHT)).expect("a well-formed coinbase");

    let mut short = coinbase(HEIGHT);
    short.input[0].script_sig = Script::from(vec![0x01]);
    assert_reason(check_transaction(&short), "bad-cb-length");
    let mut long = coinbase(HEIGHT);
    long.input[0].script_sig = Script::from(vec![0x51; 101]);
    assert_reason(check_transaction(&long), "bad-cb-length");
    let mut hundred = coinbase(HEIGHT);
    hundred.input[0].script_sig = Script::from(vec![0x51; 100]);
    check_transaction(&hundred).expect("100 bytes is allowed");

    let mut issuing = coinbase(HEIGHT);
    issuing.input[0].asset_issuance.amount = Value::Explicit(5);
    assert_reason(check_transaction(&issuing), "bad-cb-issuance");
    let mut pegin = coinbase(HEIGHT);
    pegin.input[0].is_pegin = true;
    assert_reason(check_transaction(&pegin), "bad-cb-pegin");
    let mut fee = coinbase(HEIGHT);
    fee.output.push(fee_out(5));
    assert_reason(check_transaction(&fee), "bad-cb-fee");

    // validate_transaction never accepts a coinbase.
    assert_reason(
        validate_transaction(&ctx(), &view(&[]), &RefusePegins, &coinbase(HEIGHT)),
        "coinbase",
    );
}

#[test]
fn missing_input_is_refused_as_missing() {
    let (_, t, _) = simple_spend();
    let err = assert_reason(
        validate_transaction(&ctx(), &view(&[]), &RefusePegins, &t),
        "bad-txns-inputs-missingorspent",
    );
    assert!(matches!(err, TxRejection::MissingInput { input: 0, .. }));
    assert_eq!(err.class(), chain::ledger::RejectionClass::MissingInputs);
}

#[test]
fn coinbase_outputs_mature_after_coinbase_maturity_blocks() {
    let owner = key(1);
    let make = |coin_height: u32| {
        let (outpoint, utxo) = coin(9, 0, lbtc_out(p2wpkh(&owner), 100_000), coin_height, true);
        let spent = vec![utxo.txout.clone()];
        let mut t = tx(
            vec![input(outpoint)],
            vec![lbtc_out(p2wpkh(&key(2)), 99_000), fee_out(1_000)],
        );
        sign_all(&mut t, &[owner], &spent);
        (view(&[(outpoint, utxo)]), t)
    };
    // Height 1000 spends a coinbase of height 901: depth 99 < 100.
    let (v, t) = make(HEIGHT - 99);
    let err = assert_reason(
        validate_transaction(&ctx(), &v, &RefusePegins, &t),
        "bad-txns-premature-spend-of-coinbase",
    );
    assert!(matches!(
        err,
        TxRejection::ImmatureCoinbase {
            coin_height: 901,
            height: HEIGHT,
            ..
        }
    ));
    // Depth 100 is mature.
    let (v, t) = make(HEIGHT - 100);
    validate_transaction(&ctx(), &v, &RefusePegins, &t).expect("mature coinbase output");
}

#[test]
fn absolute_lock_time_by_height_and_time() {
    let (view, t, spent) = simple_spend();
    let relock = |lock: LockTime, sequence: Sequence| {
        let mut t = t.clone();
        t.lock_time = lock;
        t.input[0].sequence = sequence;
        sign_all(&mut t, &[key(1)], &spent);
        t
    };
    let non_final = Sequence::ENABLE_RBF_NO_LOCKTIME;
    // Height lock: valid only in blocks above it.
    let at_height = relock(LockTime::from_consensus(HEIGHT), non_final);
    let err = assert_reason(
        validate_transaction(&ctx(), &view, &RefusePegins, &at_height),
        "bad-txns-nonfinal",
    );
    assert!(err.to_string().contains("height"));
    let below = relock(LockTime::from_consensus(HEIGHT - 1), non_final);
    validate_transaction(&ctx(), &view, &RefusePegins, &below).expect("lock time below the height");
    // Time lock: compared with the cutoff (median time past).
    let at_time = relock(LockTime::from_consensus(CUTOFF), non_final);
    assert_reason(
        validate_transaction(&ctx(), &view, &RefusePegins, &at_time),
        "bad-txns-nonfinal",
    );
    let before = relock(LockTime::from_consensus(CUTOFF - 1), non_final);
    validate_transaction(&ctx(), &view, &RefusePegins, &before)
        .expect("lock time before the cutoff");
    // Final sequences disable the lock time.
    let final_seq = relock(LockTime::from_consensus(HEIGHT + 50), Sequence::MAX);
    check_final(&final_seq, HEIGHT, CUTOFF).expect("all sequences final");
}

#[test]
fn bip68_height_and_time_sequence_locks() {
    let owner = key(1);
    // Coin at height 990, time CUTOFF - 100_000.
    let (outpoint, utxo) = coin(9, 0, lbtc_out(p2wpkh(&owner), 100_000), 990, false);
    let v = view(&[(outpoint, utxo.clone())]);
    let spent = vec![utxo.txout.clone()];
    let with_sequence = |sequence: u32, version: u32| {
        let mut t = tx(
            vec![input(outpoint)],
            vec![lbtc_out(p2wpkh(&key(2)), 99_000), fee_out(1_000)],
        );
        t.version = version;
        t.input[0].sequence = Sequence::from_consensus(sequence);
        sign_all(&mut t, &[owner], &spent);
        t
    };
    // 10 blocks: spendable from height 1000 (990 + 10).
    validate_transaction(&ctx(), &v, &RefusePegins, &with_sequence(10, 2))
        .expect("10-block lock met");
    let err = assert_reason(
        validate_transaction(&ctx(), &v, &RefusePegins, &with_sequence(11, 2)),
        "non-BIP68-final",
    );
    assert!(err.to_string().contains("height"), "{err}");
    // Version 1 ignores sequence locks; the disable flag too.
    validate_transaction(&ctx(), &v, &RefusePegins, &with_sequence(11, 1)).expect("version 1");
    validate_transaction(&ctx(), &v, &RefusePegins, &with_sequence(11 | (1 << 31), 2))
        .expect("disable flag");
    // Time lock in 512 s units, counted from the coin's block time: 100_000 s have passed.
    let type_flag = 1 << 22;
    let units_passed = 100_000 / 512; // 195 units = 99_840 s < 100_000
    validate_transaction(
        &ctx(),
        &v,
        &RefusePegins,
        &with_sequence(type_flag | units_passed, 2),
    )
    .expect("time lock met");
    assert_reason(
        validate_transaction(
            &ctx(),
            &v,
            &RefusePegins,
            &with_sequence(type_flag | (units_passed + 1), 2),
        ),
        "non-BIP68-final",
    );
}

#[test]
fn pegin_inputs_are_refused_until_pegins_exist() {
    let (view, mut t, _) = simple_spend();
    t.input[0].is_pegin = true;
    let err = assert_reason(
        validate_transaction(&ctx(), &view, &RefusePegins, &t),
        "bad-pegin-unsupported",
    );
    assert!(err.to_string().contains("input 0"));
}

#[test]
fn fee_outputs_must_be_explicit_policy_asset_in_range() {
    let (_, t, spent) = simple_spend();
    let c = ctx();
    assert_eq!(verify_amounts(&c, &t, &spent).unwrap(), 1_000);

    let mut other = t.clone();
    other.output[2] = TxOut::new_fee(1_000, other_asset());
    assert_reason(verify_amounts(&c, &other, &spent), "bad-txns-fee-asset");

    let mut zero = t.clone();
    zero.output[2].value = Value::Explicit(0);
    assert_reason(verify_amounts(&c, &zero, &spent), "bad-txns-fee-outofrange");

    let mut blinded = t;
    let generator = Generator::new_unblinded(&SECP, policy_asset().into_tag());
    blinded.output[2].value =
        Value::Confidential(PedersenCommitment::new_unblinded(&SECP, 1_000, generator));
    assert_reason(verify_amounts(&c, &blinded, &spent), "bad-txns-fee-asset");
}

#[test]
fn explicit_amounts_must_balance_per_asset() {
    let (_, t, spent) = simple_spend();
    let c = ctx();
    let mut more_out = t.clone();
    more_out.output[0].value = Value::Explicit(90_001);
    let err = assert_reason(verify_amounts(&c, &more_out, &spent), "bad-txns-in-ne-out");
    assert!(err.to_string().contains("exceed inputs"), "{err}");

    let mut less_out = t.clone();
    less_out.output[0].value = Value::Explicit(89_999);
    assert_reason(verify_amounts(&c, &less_out, &spent), "bad-txns-in-ne-out");

    // Paying in an asset the inputs do not have.
    let mut wrong_asset = t.clone();
    wrong_asset.output[0].asset = Asset::Explicit(other_asset());
    assert_reason(
        verify_amounts(&c, &wrong_asset, &spent),
        "bad-txns-in-ne-out",
    );

    // A spendable zero-value output is refused; a zero-value OP_RETURN is fine.
    let mut zero = t.clone();
    zero.output.push(lbtc_out(p2wpkh(&key(5)), 0));
    assert_reason(verify_amounts(&c, &zero, &spent), "bad-txns-in-ne-out");
    let mut op_return = t;
    op_return
        .output
        .push(lbtc_out(Script::new_op_return(b"hello"), 0));
    assert_eq!(verify_amounts(&c, &op_return, &spent).unwrap(), 1_000);
}

#[test]
fn pegout_outputs_are_recorded_and_checked() {
    let owner = key(1);
    let (outpoint, utxo) = coin(9, 0, lbtc_out(p2wpkh(&owner), 100_000), 10, false);
    let v = view(&[(outpoint, utxo.clone())]);
    let spent = vec![utxo.txout];
    let destination = hex::decode("76a914df662e2dd70fd82acba2d252cc897cb6e618093288ac").unwrap();
    let pegout_script = |genesis: [u8; 32]| {
        elements::script::Builder::new()
            .push_opcode(elements::opcodes::all::OP_RETURN)
            .push_slice(&genesis)
            .push_slice(&destination)
            .into_script()
    };
    let make = |out: TxOut, change: u64| {
        let mut t = tx(
            vec![input(outpoint)],
            vec![out, lbtc_out(p2wpkh(&owner), change), fee_out(1_000)],
        );
        sign_all(&mut t, &[owner], &spent);
        t
    };

    let t = make(lbtc_out(pegout_script(bitcoin_genesis()), 50_000), 49_000);
    let validated = validate_transaction(&ctx(), &v, &RefusePegins, &t).expect("valid peg-out");
    assert_eq!(validated.pegouts.len(), 1);
    let record = &validated.pegouts[0];
    assert_eq!(
        (record.txid, record.vout, record.value),
        (t.txid(), 0, 50_000)
    );
    assert_eq!(record.destination.as_bytes(), &destination[..]);
    assert!(record.extra.is_empty());
    // The burnt output is not a UTXO.
    assert_eq!(validated.created.len(), 1);
    assert_eq!(validated.created[0].0.vout, 1);

    let wrong_genesis = make(lbtc_out(pegout_script([0x42; 32]), 50_000), 49_000);
    assert_reason(
        validate_transaction(&ctx(), &v, &RefusePegins, &wrong_genesis),
        "bad-txns-pegout-genesis",
    );
    let empty_destination = elements::script::Builder::new()
        .push_opcode(elements::opcodes::all::OP_RETURN)
        .push_slice(&bitcoin_genesis())
        .push_slice(&[])
        .into_script();
    let no_destination = make(lbtc_out(empty_destination, 50_000), 49_000);
    assert_reason(
        validate_transaction(&ctx(), &v, &RefusePegins, &no_destination),
        "bad-txns-pegout-destination",
    );
    let zero = make(lbtc_out(pegout_script(bitcoin_genesis()), 0), 99_000);
    assert_reason(
        validate_transaction(&ctx(), &v, &RefusePegins, &zero),
        "bad-txns-pegout-zero",
    );
    let other = make(
        explicit_out(other_asset(), pegout_script(bitcoin_genesis()), 5),
        99_000,
    );
    assert_reason(
        validate_transaction(&ctx(), &v, &RefusePegins, &other),
        "bad-txns-pegout-asset",
    );
    let mut confidential_out = lbtc_out(pegout_script(bitcoin_genesis()), 50_000);
    let generator = Generator::new_unblinded(&SECP, policy_asset().into_tag());
    confidential_out.value =
        Value::Confidential(PedersenCommitment::new_unblinded(&SECP, 50_000, generator));
    confidential_out.nonce = Nonce::Null;
    let confidential = make(confidential_out, 49_000);
    assert_reason(
        validate_transaction(&ctx(), &v, &RefusePegins, &confidential),
        "bad-txns-pegout-confidential",
    );
}

#[test]
fn lookup_failures_are_internal_not_invalid() {
    struct Broken;
    impl chain::ledger::UtxoView for Broken {
        fn utxo(
            &self,
            _: &OutPoint,
        ) -> Result<Option<chain::ledger::Utxo>, chain::ledger::UtxoLookupError> {
            Err(chain::ledger::UtxoLookupError("disk on fire".into()))
        }
    }
    let (_, t, _) = simple_spend();
    let err = validate_transaction(&ctx(), &Broken, &RefusePegins, &t).unwrap_err();
    assert_eq!(err.class(), chain::ledger::RejectionClass::Internal);
}
