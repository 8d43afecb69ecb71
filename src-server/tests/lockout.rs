//! A guesser never locks the class out (issue 22, findings 2 and 7; docs/PROTOCOL-ADDITIONS.md, G).
//! The attack, as it was found: 108 wrong codes from 12 addresses spend the room's budget of wrong
//! codes in well under a second, knocks from 11 more addresses fill the teacher's list, and they go
//! on while classmates try to join. Each classmate with the right code must reach the teacher's
//! list, marked as having it, and get in at one tap of "let in everyone with the code"; no guesser
//! may. The teacher is told the moment the budget is spent, not seconds later.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{CODE, Raw, TestServer};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn wrong(n: usize) -> String {
    // Never the right code: the attack's codes all differ from it in the first digit.
    let first = if CODE.starts_with('9') { '0' } else { '9' };
    format!("{first}{:05}", n % 100_000)
}

/// What a code claim got first: held (`waiting`), seated, or closed with a code.
#[derive(Debug, PartialEq)]
enum Got {
    Waiting,
    Welcome,
    Closed(u16),
}

async fn claim(server: &TestServer, host: u8, code: &str, name: &str, device: &str) -> (Raw, Got) {
    let mut raw = server.raw_from(host).await;
    raw.send(json!({"t":"hello","v":1,"role":"student","code":code,"name":name,"device":device})).await;
    let got = loop {
        match tokio::time::timeout(common::PATIENCE, raw.ws.next()).await.expect("an answer in time") {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                match v["t"].as_str() {
                    Some("waiting") => break Got::Waiting,
                    Some("welcome") => break Got::Welcome,
                    _ => continue,
                }
            }
            Some(Ok(Message::Close(c))) => break Got::Closed(c.map_or(1005, |c| u16::from(c.code))),
            Some(Ok(_)) => continue,
            other => panic!("the connection broke: {other:?}"),
        }
    };
    (raw, got)
}

/// The guessers' addresses: 12 that guess, then 11 that knock (127.0.0.10 to 127.0.0.32).
const GUESSERS: std::ops::Range<u8> = 10..22;
const KNOCKERS: std::ops::Range<u8> = 22..33;

#[tokio::test]
async fn a_classmate_with_the_code_gets_in_every_time_while_a_guesser_floods_the_room() {
    // A class of 40 at most: the list of held claims fills after 40, as it would after 500.
    let server = Arc::new(TestServer::with(|limits, _| limits.max_participants = 40).await);
    let (mut teacher, _) = server.teacher().await;

    // 108 wrong codes from 12 addresses: the room's budget (100 at once) is spent.
    let mut held = Vec::new();
    let mut n = 0;
    for _ in 0..9 {
        for host in GUESSERS {
            n += 1;
            let (raw, got) = claim(&server, host, &wrong(n), "Aisha", &format!("guess-{host}-{n:04}")).await;
            match got {
                Got::Waiting => held.push(raw),
                Got::Closed(4001) => {}
                other => panic!("a wrong code got {other:?}"),
            }
        }
    }
    assert!(!held.is_empty(), "the budget is spent: later wrong codes are held, not answered");

    // Finding 7: the teacher hears that codes now wait before the first held claim shows.
    loop {
        let frame = teacher.recv().await;
        match frame["t"].as_str() {
            Some("guessing") if frame["waiting_room"] == true => break,
            Some("knocks") => panic!("a held claim reached the list before the teacher was told"),
            _ => {}
        }
    }

    // The flood goes on from 23 addresses while the classmates come.
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (server, stop) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            let mut kept = Vec::new();
            let hosts: Vec<u8> = GUESSERS.chain(KNOCKERS).collect();
            for i in 0..2000usize {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let host = hosts[i % hosts.len()];
                let (raw, got) =
                    claim(&server, host, &wrong(1000 + i), "Aisha", &format!("guess-{host}-{i:04}")).await;
                assert_ne!(got, Got::Welcome, "a wrong code got in");
                if got == Got::Waiting {
                    kept.push(raw);
                }
            }
            kept.len()
        })
    };

    let mut let_in = 0;
    for i in 0..30u8 {
        let device = format!("classmate-{i:04}");
        let (mut classmate, got) = claim(&server, 100 + i, CODE, "Aisha", &device).await;
        assert_eq!(
            got,
            Got::Waiting,
            "classmate {i}: the right code waits for the teacher while guessing goes on"
        );
        // The teacher's list shows the classmate, marked as having the code; one tap lets in all so marked.
        let ids = loop {
            let list = teacher.recv_type("knocks").await;
            let entries = list["knocks"].as_array().unwrap();
            for k in entries.iter().filter(|k| k["has_code"] == true) {
                assert!(
                    k["device"].as_str().unwrap().starts_with("classmate-"),
                    "a guess is marked right: {k}"
                );
            }
            if entries.iter().any(|k| k["device"] == device.as_str() && k["has_code"] == true) {
                break entries
                    .iter()
                    .filter(|k| k["has_code"] == true)
                    .map(|k| k["id"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>();
            }
        };
        teacher.send(json!({"t":"admit","id":100 + u32::from(i),"knocks":ids})).await;
        if classmate.recv_type("welcome").await["you"]["name"] == "Aisha" {
            let_in += 1;
        }
        held.push(classmate);
    }
    stop.store(true, Ordering::Relaxed);
    let waiting = flood.await.unwrap();
    assert_eq!(let_in, 30, "every classmate got in");
    assert!(waiting > 0, "the flood was still knocking");

    // Nobody but the 30 classmates has a seat.
    let (_, welcome) = server.teacher().await;
    let online: Vec<&Value> =
        welcome["roster"].as_array().unwrap().iter().filter(|e| e["online"] == true).collect();
    assert_eq!(online.len(), 30, "only the classmates are in: {online:?}");
}

/// 117 wrong codes from 13 addresses starting at 127.0.0.`first`: how many were answered (4001);
/// the held ones are kept waiting in `kept`.
async fn guess_round(server: &TestServer, first: u8, kept: &mut Vec<Raw>) -> usize {
    let mut answered = 0;
    for round in 0..9 {
        for host in first..first + 13 {
            let n = usize::from(host) * 100 + round;
            let (raw, got) = claim(server, host, &wrong(n), "Guess", &format!("guess-{n:05}")).await;
            match got {
                Got::Closed(4001) => answered += 1,
                Got::Waiting => kept.push(raw),
                other => panic!("a wrong code got {other:?}"),
            }
        }
    }
    answered
}

#[tokio::test]
async fn a_new_code_adds_no_budget_for_guessing() {
    let server = TestServer::start().await;
    let (mut teacher, _) = server.teacher().await;
    let mut kept = Vec::new();
    let first = guess_round(&server, 40, &mut kept).await;
    assert!((90..=110).contains(&first), "the budget answers about a tenth of an hour's thousand: {first}");
    teacher.send(json!({"t":"new_code","id":3})).await;
    teacher.recv_type("ok").await;
    // New addresses, so that no address's own quota is what holds them.
    let again = guess_round(&server, 60, &mut kept).await;
    assert!(again <= 2, "a new code must not answer another {first} guesses: {again}");
}
