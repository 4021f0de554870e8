//! Reading processes from a procfs mount (`/proc`, or the host's `/proc` mounted into the
//! Collector's pod). Every read may race with the process exiting: a vanished process is
//! `None`, never an error.

use std::path::{Path, PathBuf};

/// What the Collector knows of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// The executable as the process's mount namespace names it (`/usr/bin/sleep`).
    pub exe: String,
    /// The basename of `exe` (or `comm` when the executable cannot be read).
    pub name: String,
    /// argv[1..] joined by spaces.
    pub args: String,
    /// Start time in clock ticks after boot (with the pid, it identifies a process instance).
    pub start_time: u64,
    pub cgroup: String,
}

#[derive(Debug, Clone)]
pub struct Procfs {
    root: PathBuf,
}

impl Procfs {
    pub fn new(root: impl Into<PathBuf>) -> Procfs {
        Procfs { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, pid: u32, file: &str) -> PathBuf {
        self.root.join(pid.to_string()).join(file)
    }

    /// Every process id now.
    pub fn pids(&self) -> Vec<u32> {
        let Ok(dir) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// `(ppid, start_time)` from `/proc/PID/stat`.
    pub fn stat(&self, pid: u32) -> Option<(u32, u64)> {
        let text = std::fs::read_to_string(self.path(pid, "stat")).ok()?;
        // The command name is in parentheses and may itself contain spaces and ')'.
        let rest = &text[text.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state(0) ppid(1) ... starttime is field 22 of the line, 19 here.
        let ppid = fields.get(1)?.parse().ok()?;
        let start = fields.get(19)?.parse().ok()?;
        Some((ppid, start))
    }

    pub fn exe(&self, pid: u32) -> Option<String> {
        std::fs::read_link(self.path(pid, "exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    pub fn cgroup(&self, pid: u32) -> Option<String> {
        std::fs::read_to_string(self.path(pid, "cgroup")).ok()
    }

    pub fn read(&self, pid: u32) -> Option<ProcInfo> {
        let (ppid, start_time) = self.stat(pid)?;
        let status = std::fs::read_to_string(self.path(pid, "status")).ok()?;
        let id_field = |key: &str| -> u32 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(u32::MAX)
        };
        let exe = self.exe(pid).unwrap_or_default();
        let cmdline = std::fs::read(self.path(pid, "cmdline")).unwrap_or_default();
        // A process caught inside execve shows the new program with no arguments yet, or the
        // old program's arguments: it is read again at the next look instead of half-reported.
        // (Kernel threads and zombies have no exe and keep an empty command line.)
        if !exe.is_empty() && (cmdline.is_empty() || self.exe(pid).as_deref() != Some(&exe)) {
            return None;
        }
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let name = match exe.rsplit('/').next() {
            Some(n) if !n.is_empty() => n.trim_end_matches(" (deleted)").to_string(),
            _ => std::fs::read_to_string(self.path(pid, "comm"))
                .unwrap_or_default()
                .trim()
                .to_string(),
        };
        Some(ProcInfo {
            pid,
            ppid,
            uid: id_field("Uid:"),
            gid: id_field("Gid:"),
            exe,
            name,
            args: argv.get(1..).unwrap_or_default().join(" "),
            start_time,
            cgroup: self.cgroup(pid).unwrap_or_default(),
        })
    }

    /// The socket inodes a process holds open.
    pub fn socket_inodes(&self, pid: u32) -> Vec<u64> {
        let Ok(dir) = std::fs::read_dir(self.path(pid, "fd")) else {
            return Vec::new();
        };
        dir.filter_map(|e| {
            let link = std::fs::read_link(e.ok()?.path()).ok()?;
            let link = link.to_str()?;
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
    }

    /// The process's network namespace (the inode `/proc/PID/ns/net` names).
    pub fn netns(&self, pid: u32) -> Option<u64> {
        let link = std::fs::read_link(self.path(pid, "ns/net")).ok()?;
        link.to_str()?
            .strip_prefix("net:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    }

    /// `/proc/PID/net/<table>`: the tables of the process's network namespace.
    pub fn net_table(&self, pid: u32, table: &str) -> Option<String> {
        std::fs::read_to_string(self.path(pid, &format!("net/{table}"))).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_child_process_reads_back_with_its_identity() {
        let mut child = std::process::Command::new("/usr/bin/sleep")
            .args(["30", "--"])
            .spawn()
            .expect("spawn");
        let proc = Procfs::new("/proc");
        let me = std::process::id();
        // spawn() may return while the kernel is still inside the exec (the argument area is set
        // last): such a process reads as not-yet-readable, then as itself once the exec is done.
        let mut read = proc.read(child.id());
        for _ in 0..200 {
            if read.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
            read = proc.read(child.id());
        }
        let info = read.expect("readable once the exec is done");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(info.pid, child.id());
        assert_eq!(info.ppid, me);
        assert_eq!(info.exe, "/usr/bin/sleep");
        assert_eq!(info.name, "sleep");
        assert_eq!(info.args, "30 --");
        assert_eq!(info.uid, proc.read(me).expect("self").uid);
        assert!(info.start_time > 0);
        assert!(
            proc.read(child.id())
                .is_none_or(|again| again.start_time != info.start_time),
            "gone after exit (the pid may be reused, by another process)"
        );
    }

    #[test]
    fn sockets_and_network_namespace_of_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let proc = Procfs::new("/proc");
        let me = std::process::id();
        let inodes = proc.socket_inodes(me);
        let table = proc.net_table(me, "tcp").expect("tcp table");
        let port = listener.local_addr().expect("addr").port();
        let sockets = super::super::netstat::parse(super::super::netstat::Protocol::Tcp, &table);
        let ours = sockets
            .iter()
            .find(|s| s.local.port() == port)
            .expect("listener in the table");
        assert!(inodes.contains(&ours.inode), "the fd links name the inode");
        assert!(proc.netns(me).is_some());
    }
}
