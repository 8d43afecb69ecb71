//! Documents for students at home (PROTOCOL-ADDITIONS.md, section J; docs/RELAY.md), through a
//! real `redis-server` and relay: a scanned book in checked pieces, the page on screen first; a
//! block changed in Redis caught by the student; one range per request and a few open requests per
//! student; and a relay that stays small while thirty students leave their requests unread.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::books::{scanned_book, unread};
use common::redis::RedisServer;
use common::remote::*;
use common::{CODE, PATIENCE, Raw, TestServer};
use lectern::client::fetch::{get_range, request};
use lectern::cloud::keys::{self, DocHead};
use lectern::protocol::manifest::{ManifestError, Pieces};
use serde_json::{Value, json};

/// Uploads `pdf` as the teacher and shows its page `page`: the document's id.
async fn show(server: &TestServer, pdf: Vec<u8>, page: u32) -> String {
    let url = format!("{}/v1/docs?title=Mushaf", server.http);
    let answer =
        request("POST", &url, &server.fingerprint, Some(&server.teacher_key), Some(Bytes::from(pdf)))
            .await
            .unwrap();
    assert_eq!(answer.status, 201, "{:?}", answer.body);
    let id = serde_json::from_slice::<Value>(&answer.body).unwrap()["id"].as_str().unwrap().to_string();
    let (mut teacher, _) = server.teacher().await;
    teacher.send(json!({"t":"set","id":1,"patch":{"doc":id,"page":page}})).await;
    teacher.recv_type("ok").await;
    id
}

/// A student through the relay at `ws`: its open connection (its token lives as long as it does),
/// its token and the lesson's document as the welcome's signed state names it.
async fn remote(server: &TestServer, ws: &str, fingerprint: &str, n: usize) -> (Raw, String, Value) {
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    let mut raw = Raw { ws: lectern::client::connect(ws, fingerprint).await.unwrap() };
    let device = format!("remote-reader-{n:02}");
    raw.send(json!({"t":"hello","v":1,"role":"student","code":CODE,"name":format!("Reader {n}"),"device":device,"room":room}))
        .await;
    let welcome = raw.recv_type("welcome").await;
    (raw, welcome["token"].as_str().unwrap().to_string(), welcome["state"]["doc"].clone())
}

/// Waits until the teacher's server has put the whole document into Redis.
async fn whole_in_redis(redis: &RedisServer, room: &str, sha256: &str) -> DocHead {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let json: Option<String> =
                redis::cmd("GET").arg(keys::doc(room, sha256)).query_async(&mut conn).await.unwrap();
            if let Some(head) = json.and_then(|j| serde_json::from_str::<DocHead>(&j).ok()).filter(|h| h.done)
            {
                return head;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the document in redis in time")
}

/// GETs `url` until the relay has it (503 while the teacher's server is still putting it there).
async fn get_when_there(url: &str, fingerprint: &str, token: &str) -> Bytes {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let answer = request("GET", url, fingerprint, Some(token), None).await.unwrap();
            if answer.status == 200 {
                return answer.body;
            }
            assert!(
                [404, 503].contains(&answer.status),
                "not there yet is the only other answer: {}",
                answer.status
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("there in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_at_home_checks_every_piece_and_a_block_changed_in_redis_is_caught() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (relay, ws, fingerprint) = relay(&redis).await;
    let book = scanned_book(24, 60_000);
    let id = show(&server, book.clone(), 20).await;
    let (_raw, token, doc) = remote(&server, &ws, &fingerprint, 1).await;
    let signed =
        doc["manifest"].as_str().expect("the signed state names the document's manifest").to_string();
    let sha = doc["sha256"].as_str().unwrap().to_string();
    let url = format!("https://127.0.0.1:{}/v1/docs/{id}", relay.addr().port());

    // The manifest, from the relay, is the one the teacher signed; it names page 20's image.
    let manifest = get_when_there(&format!("{url}/manifest"), &fingerprint, &token).await;
    let pieces = Pieces::check(&manifest, &signed, 24).unwrap();
    let image = |page: usize| pieces.scans[page - 1].expect("every page is a scan");
    let [offset, length, _, _] = image(20);
    let (a, b) = pieces.cover(offset, offset + length);
    let part = tokio::time::timeout(PATIENCE, async {
        loop {
            let part = get_range(&url, &fingerprint, Some(&token), a, b).await.unwrap();
            if part.status == 206 {
                return part;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(part.total, Some(book.len() as u64));
    pieces.verify(a, &part.body).unwrap();
    assert_eq!(&part.body[..], &book[a as usize..b as usize]);
    // The page's piece is about its image: a student draws it from ~60 kB, not the 1.5 MB book.
    assert!(b - a < 70_000, "{}", b - a);

    // Someone who can write into Redis changes a block the relay has not read yet.
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    whole_in_redis(&redis, &room, &sha).await;
    let [offset, length, _, _] = image(5);
    let block = offset / keys::DOC_BLOCK;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = keys::doc_block(&room, &sha, block);
    let mut bytes: Vec<u8> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.unwrap();
    bytes[(offset - block * keys::DOC_BLOCK) as usize + 100] ^= 0x55;
    let _: () = redis::cmd("SET").arg(&key).arg(bytes).query_async(&mut conn).await.unwrap();
    let (a, b) = pieces.cover(offset, offset + length);
    let part = get_range(&url, &fingerprint, Some(&token), a, b).await.unwrap();
    assert_eq!(part.status, 206);
    assert!(matches!(pieces.verify(a, &part.body), Err(ManifestError::Piece(_))), "the change is caught");

    // One range per request; and a student's fifth open request waits for one of its four.
    let two = unread(&url, &fingerprint, &token, Some("bytes=0-9,20-29")).await;
    assert_eq!(two.status, 416);
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(unread(&url, &fingerprint, &token, None).await);
    }
    assert!(open.iter().all(|u| u.status == 200));
    assert_eq!(unread(&url, &fingerprint, &token, None).await.status, 429);
    let (_other, other_token, _) = remote(&server, &ws, &fingerprint, 2).await;
    assert_eq!(
        unread(&url, &fingerprint, &other_token, None).await.status,
        200,
        "another student is not held up"
    );
    open.pop();
    tokio::time::timeout(PATIENCE, async {
        while unread(&url, &fingerprint, &token, None).await.status != 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a turn again once one request ends");
    relay.stop().await;
}

/// A process's resident memory, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap();
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().unwrap() * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_stays_small_while_thirty_students_leave_thirty_requests_unread() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let (relay, ws, fingerprint) = common::relays::relay_process(&redis.url(), 1000);
    let id = show(&server, scanned_book(4, 10_000), 1).await;
    let (_first, _, doc) = remote(&server, &ws, &fingerprint, 0).await;
    let sha = doc["sha256"].as_str().unwrap().to_string();
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    whole_in_redis(&redis, &room, &sha).await;
    // Redis holds a 96 MB document under the lesson's (a relay serves what Redis holds; its
    // students check it): three times what a relay keeps in memory.
    let size = 96 << 20;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let head = serde_json::to_string(&DocHead { size, done: true }).unwrap();
    let _: () = redis::cmd("SET").arg(keys::doc(&room, &sha)).arg(head).query_async(&mut conn).await.unwrap();
    for i in 0..size / keys::DOC_BLOCK {
        let block = vec![(i % 251) as u8; keys::DOC_BLOCK as usize];
        let _: () = redis::cmd("SET")
            .arg(keys::doc_block(&room, &sha, i))
            .arg(block)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let before = rss_bytes(relay.id());

    // Thirty students each ask for the rest of the document thirty times, from places spread over
    // it (so the answers together touch more blocks than the relay keeps), and read none of them.
    let url = format!("https://{}/v1/docs/{id}", ws.trim_start_matches("wss://").trim_end_matches("/v1/ws"));
    let mut students = Vec::new();
    let mut held = Vec::new();
    let mut refused = 0;
    for n in 1..=30 {
        let (raw, token, _) = remote(&server, &ws, &fingerprint, n).await;
        students.push(raw);
        for k in 0..30u64 {
            let range = format!("bytes={}-", ((n as u64 * 7 + k) % 96) << 20);
            let answer = unread(&url, &fingerprint, &token, Some(&range)).await;
            match answer.status {
                206 => held.push(answer),
                429 => refused += 1,
                other => panic!("unexpected answer {other}"),
            }
        }
    }
    assert_eq!((held.len(), refused), (120, 780), "four open requests a student, the rest refused");
    // And one more student reads all of it, through the relay's cache.
    let (_reader, token, _) = remote(&server, &ws, &fingerprint, 31).await;
    let whole = request("GET", &url, &fingerprint, Some(&token), None).await.unwrap();
    assert_eq!((whole.status, whole.body.len() as u64), (200, size));
    // Every held answer has filled its connection: the relay has read what it can send.
    let mut peak = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_bytes(relay.id()));
    }
    eprintln!(
        "relay RSS: {} MiB before, {} MiB at most while 120 answers go unread",
        before >> 20,
        peak >> 20
    );
    assert!(peak <= 100 << 20, "the relay's RSS reached {} MiB", peak >> 20);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_whose_keys_redis_lost_or_a_writer_changed_is_put_back_when_shown_again() {
    let redis = RedisServer::start().await;
    let server = bridged(&redis).await;
    let book = scanned_book(6, 20_000);
    let id = show(&server, book.clone(), 1).await;
    let sha = lectern::hex(&<sha2::Sha256 as sha2::Digest>::digest(&book));
    let room = server.handle.as_ref().unwrap().ready().room.clone();
    whole_in_redis(&redis, &room, &sha).await;
    // Someone who can write into Redis claims the document is as long as can be, and a block is
    // lost (evicted, or deleted).
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let forged = serde_json::to_string(&DocHead { size: u64::MAX, done: true }).unwrap();
    let _: () =
        redis::cmd("SET").arg(keys::doc(&room, &sha)).arg(forged).query_async(&mut conn).await.unwrap();
    let _: () = redis::cmd("DEL").arg(keys::doc_block(&room, &sha, 0)).query_async(&mut conn).await.unwrap();

    // The teacher shows another document, then this one again: the server puts it back as it is.
    let other = show(&server, scanned_book(1, 1_000), 1).await;
    assert_ne!(other, id);
    let (mut teacher, _) = server.teacher().await;
    teacher.send(json!({"t":"set","id":2,"patch":{"doc":id}})).await;
    teacher.recv_type("ok").await;
    let first = &book[..keys::DOC_BLOCK.min(book.len() as u64) as usize];
    tokio::time::timeout(PATIENCE, async {
        loop {
            let head: Option<String> =
                redis::cmd("GET").arg(keys::doc(&room, &sha)).query_async(&mut conn).await.unwrap();
            let head = head.and_then(|h| serde_json::from_str::<DocHead>(&h).ok());
            let block: Option<Vec<u8>> =
                redis::cmd("GET").arg(keys::doc_block(&room, &sha, 0)).query_async(&mut conn).await.unwrap();
            // The server's own size, not the writer's, and the lost block back.
            if head == Some(DocHead { size: book.len() as u64, done: true })
                && block.as_deref() == Some(first)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the document put back in time");
}
