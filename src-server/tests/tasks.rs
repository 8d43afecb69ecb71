//! Every task has an owner (issue 23): once `wait_stopped()` (the teacher's server) or `stop()` (a
//! relay) returns, no task either started is still alive, whatever was connected when it stopped:
//! a teacher, students on the WebSocket and on the fallback transport, a remote student through the
//! relay, the Redis bridge with its room readers, a document being put into Redis.
//!
//! The hosts run on a runtime of their own and the clients on another, so the runtime's count of
//! alive tasks (tokio's runtime metrics) is the hosts' alone.
#![allow(clippy::unwrap_used)] // a test may panic on what it controls

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::remote::{bridged, relay, remote_student, state_where};
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

/// The hosts' runtime's alive tasks, once what is ending has ended (or `SETTLE` is over).
fn alive_after_settling(hosts: &Runtime) -> usize {
    let metrics = hosts.metrics();
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
    let hosts = runtime(2);
    let clients = runtime(1);
    let redis = clients.block_on(RedisServer::start());
    let server = hosts.block_on(bridged(&redis));
    let (relay, ws, fingerprint) = hosts.block_on(relay(&redis));
    assert!(hosts.metrics().num_alive_tasks() > 0, "the hosts run tasks");

    let (teacher, mut student, link, remote) = clients.block_on(async {
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
    let during = hosts.metrics().num_alive_tasks();
    assert!(during >= 8, "connections, links, the bridge and the relay's feeds are tasks: {during}");

    // The relay stops with its student connected, then the server with everyone else.
    hosts.block_on(relay.stop());
    hosts.block_on(server.stop());
    let left = alive_after_settling(&hosts);
    assert_eq!(left, 0, "tasks still alive after both stopped (of {during} while serving)");

    // What the clients saw: the server closed them as it stopped (4503, come back later).
    clients.block_on(async {
        assert_eq!(student.close_code().await, 4503);
        drop((teacher, link, remote));
    });
}
