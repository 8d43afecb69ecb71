//! A real `redis-server` (Debian's) on a free loopback port, with nothing saved to disk; killed when
//! dropped. The tests need it installed (CI installs it); they fail with a clear message if not.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running redis-server.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Over TLS with this password (its certificate is `dir/cert.pem`).
    tls: Option<String>,
}

impl RedisServer {
    /// Starts one and waits until it answers.
    pub async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        RedisServer::on(port).await
    }

    /// Starts one on this port (to restart one that was killed) and waits until it answers.
    pub async fn on(port: u16) -> RedisServer {
        RedisServer::spawn(port, None).await
    }

    /// Starts one that speaks only TLS (a self-signed certificate) and wants this password.
    pub async fn with_tls(password: &str) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        RedisServer::spawn(port, Some(password.to_string())).await
    }

    async fn spawn(port: u16, tls: Option<String>) -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]).arg("--dir").arg(dir.path());
        match &tls {
            None => {
                cmd.args(["--port", &port.to_string()]);
            }
            Some(password) => {
                let ip = std::net::IpAddr::from([127, 0, 0, 1]);
                let identity = lectern::tls::Identity::generate(&["localhost".into()], &[ip]).unwrap();
                identity.save(dir.path()).unwrap();
                let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
                cmd.args(["--port", "0", "--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
                    .arg("--tls-cert-file")
                    .arg(&cert)
                    .arg("--tls-key-file")
                    .arg(&key)
                    .arg("--tls-ca-cert-file")
                    .arg(&cert)
                    .args(["--requirepass", password]);
            }
        }
        let child = cmd
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt install redis-server)");
        let server = RedisServer { child, port, dir, tls };
        let client = lectern::cloud::connect::client(&server.url(), server.ca().as_deref()).unwrap();
        let deadline = tokio::time::Instant::now() + super::PATIENCE;
        loop {
            if let Ok(mut c) = client.connect().await
                && redis::cmd("PING").query_async::<String>(&mut c).await.is_ok()
            {
                return server;
            }
            assert!(tokio::time::Instant::now() < deadline, "redis-server did not answer");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self) -> String {
        match &self.tls {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(password) => format!("rediss://:{password}@127.0.0.1:{}", self.port),
        }
    }

    /// The certificate to trust it by, when it speaks TLS.
    pub fn ca(&self) -> Option<std::path::PathBuf> {
        self.tls.as_ref().map(|_| self.dir.path().join("cert.pem"))
    }

    /// Kills it at once (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-node Redis Cluster on loopback (no replicas), made with `redis-cli --cluster create`.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three nodes, joins them into a cluster, and waits until it serves every slot.
    pub async fn start() -> RedisCluster {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            // A cluster node also listens on its port + 10000 (the cluster bus): keep both free and
            // under 65536.
            let port = loop {
                let p = rand::random_range(20_000..45_000u16);
                let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
                if free(p) && free(p + 10_000) {
                    break p;
                }
            };
            let dir = tempfile::tempdir().unwrap();
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server must be installed (apt install redis-server)");
            nodes.push(RedisServer { child, port, dir, tls: None });
        }
        for node in &nodes {
            let client = redis::Client::open(node.url()).unwrap();
            let deadline = tokio::time::Instant::now() + super::PATIENCE;
            while client.get_multiplexed_async_connection().await.is_err() {
                assert!(tokio::time::Instant::now() < deadline, "a cluster node did not start");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        let mut create = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli");
        assert!(create.wait().unwrap().success(), "redis-cli --cluster create failed");
        let cluster = RedisCluster { nodes };
        // Every node must agree the cluster is whole before the test uses it.
        let deadline = tokio::time::Instant::now() + super::PATIENCE;
        for node in &cluster.nodes {
            let client = redis::Client::open(node.url()).unwrap();
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            loop {
                let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut c).await.unwrap();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "the cluster did not come up: {info}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        cluster
    }

    /// The seed URLs, comma-separated, as Lectern takes a cluster.
    pub fn url(&self) -> String {
        self.nodes.iter().map(RedisServer::url).collect::<Vec<_>>().join(",")
    }
}
