//! An NFQUEUE queue read without blocking, and waited on with `ppoll` to the microsecond: the `nfq`
//! crate does not give its socket out, so it is found among the process's sockets as the one
//! opening the queue added.

use std::collections::HashSet;
use std::time::Duration;

/// A bound queue and its netlink socket.
pub struct Nfq {
    queue: nfq::Queue,
    fd: libc::c_int,
}

/// The process's open sockets (listing them opens a descriptor of its own, which is no socket).
fn sockets() -> anyhow::Result<HashSet<libc::c_int>> {
    let mut fds = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        if let (true, Some(fd)) = (is_socket, entry.file_name().to_str().and_then(|n| n.parse().ok())) {
            fds.insert(fd);
        }
    }
    Ok(fds)
}

impl Nfq {
    /// Opens queue `num` (packets copied whole, a deep kernel queue, and fail-open: if this program
    /// falls behind by 4,096 packets, the kernel lets packets through rather than drop them).
    pub fn open(num: u16) -> anyhow::Result<Nfq> {
        let before = sockets()?;
        let mut queue = nfq::Queue::open()?;
        let added: Vec<_> = sockets()?.difference(&before).copied().collect();
        let [fd] = added[..] else { anyhow::bail!("cannot tell the queue's socket among {added:?}") };
        queue.bind(num)?;
        queue.set_queue_max_len(num, 4096)?;
        queue.set_fail_open(num, true)?;
        queue.set_nonblocking(true);
        Ok(Nfq { queue, fd })
    }

    /// The next packet that has arrived, if any.
    pub fn try_recv(&mut self) -> anyhow::Result<Option<nfq::Message>> {
        match self.queue.recv() {
            Ok(msg) => Ok(Some(msg)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives a packet its verdict.
    pub fn verdict(&mut self, mut msg: nfq::Message, verdict: nfq::Verdict) -> anyhow::Result<()> {
        msg.set_verdict(verdict);
        Ok(self.queue.verdict(msg)?)
    }

    /// Waits until a packet arrives or `at_most` has passed (or a signal comes).
    #[allow(unsafe_code)] // one ppoll on the queue's open socket, which lives as long as `self`
    pub fn wait(&self, at_most: Duration) -> anyhow::Result<()> {
        let mut pfd = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
        let ts = libc::timespec {
            tv_sec: libc::time_t::try_from(at_most.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_nsec: libc::c_long::from(i32::try_from(at_most.subsec_nanos()).unwrap_or(0)),
        };
        // SAFETY: one valid pollfd and a valid timespec, both alive for the call.
        let r = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(())
    }
}
