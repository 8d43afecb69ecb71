//! Every task has an owner (issue 23): once `stop()` (a relay) or `wait_stopped()` (the teacher's
//! server) returns, no task it started is still alive, whatever was connected when it stopped: a
//! teacher, students on the WebSocket and on the fallback transport, a remote student through the
//! relay, the Redis bridge with its room readers, and the lesson's document put into Redis.
//!
//! The server, the relay and the clients each run on a runtime of their own, so a runtime's count of
//! alive tasks (tokio's runtime metrics) is its host's alone, and neither host's stop hides behind the
//! other's.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::remote::{bridged, relay, remote_student, roster_where, state_where};
use common::{CODE, TestServer};
use lectern::client::fetch::request;
use serde_json::json;
use tokio::runtime::{Builder, Runtime};

/// Tasks a library starts for a connection we dropped (a Redis connection's driver, say) end when
/// they next run, not at once: how long they may take (a task of ours that outlives its stop by
/// seconds, as the fallback links' reaper did, is still caught).
const SETTLE: Duration = Duration::from_millis(500);

fn runtime(threads: usize) -> Runtime {
    Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap()
}

/// A runtime's alive tasks, once what is ending has ended (or `SETTLE` is over).
fn alive_after_settling(rt: &Runtime) -> usize {
    let metrics = rt.metrics();
    let clock = std::time::Instant::now();
    while metrics.num_alive_tasks() > 0 && clock.elapsed() < SETTLE {
        std::thread::yield_now();
    }
    metrics.num_alive_tasks()
}

/// Opens a fallback-transport link for a student: the server then runs its pump, its in-memory
/// lesson connection and the links' reaper.
async fn fallback_student(server: &TestServer) -> String {
    let url = format!("https://127.0.0.1:{}/v1/sse", server.port());
    let hello =
        json!({"t":"hello","v":1,"role":"student","code":CODE,"name":"Maryam","device":"sse-device-0001"});
    let answer =
        request("POST", &url, &server.fingerprint, None, Some(hello.to_string().into())).await.unwrap();
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    serde_json::from_slice::<serde_json::Value>(&answer.body).unwrap()["link"].as_str().unwrap().to_string()
}

#[test]
fn a_stopped_server_and_relay_leave_no_task_alive() {
    let (server_rt, relay_rt, clients) = (runtime(1), runtime(1), runtime(1));
    let redis = clients.block_on(RedisServer::start());
    let server = server_rt.block_on(bridged(&redis));
    let (relay, ws, fingerprint) = relay_rt.block_on(relay(&redis));

    let (mut teacher, mut student, link, remote) = clients.block_on(async {
        let (mut teacher, _) = server.teacher().await;
        let (student, _) = server.student("Aisha", "tasks-device-0001").await;
        let link = fallback_student(&server).await;
        let mut remote = remote_student(&server, &ws, &fingerprint, "Yusuf");
        state_where(&mut remote, |_| true).await;
        // A change crosses Redis to the remote student while everyone is connected.
        teacher.send(json!({"t":"set","id":1,"patch":{"page":2}})).await;
        state_where(&mut remote, |s| s.page == 2).await;
        (teacher, student, link, remote)
    });
    let (on_server, on_relay) = (server_rt.metrics().num_alive_tasks(), relay_rt.metrics().num_alive_tasks());
    assert!(on_server >= 6, "connections, the link, the upkeep and the bridge are tasks: {on_server}");
    assert!(on_relay >= 4, "the accept loop, the canary, the room's feed and the connection: {on_relay}");

    // The relay stops with its student connected: nothing of it is left, and the student's leave
    // went through Redis to the teacher before it returned (its writer outlives the connections).
    relay_rt.block_on(relay.stop());
    assert_eq!(alive_after_settling(&relay_rt), 0, "the relay's tasks outlived its stop (of {on_relay})");
    clients.block_on(roster_where(&mut teacher, |e| e["remote"] == true && e["online"] == false));

    // Then the server, with everyone else connected.
    server_rt.block_on(server.stop());
    assert_eq!(alive_after_settling(&server_rt), 0, "the server's tasks outlived its stop (of {on_server})");

    // What the clients saw: the server closed them as it stopped (4503, come back later).
    clients.block_on(async {
        assert_eq!(student.close_code().await, 4503);
        drop((teacher, link, remote));
    });
}
