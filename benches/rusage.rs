//! A child's own CPU time and peak memory: `wait4(2)` reaps the child and returns its rusage
//! (no other process mixed in). Shared by the benches.

use std::time::Duration;

pub use imp::wait;

/// Resource usage of one child process.
pub struct Usage {
    pub user: Duration,
    pub sys: Duration,
    pub max_rss_kib: u64,
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod imp {
    use std::io;
    use std::os::raw::{c_int, c_long};
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, ExitStatus};
    use std::time::Duration;

    use super::Usage;

    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Timeval {
        sec: c_long,
        usec: c_long,
    }

    /// `struct rusage` of 64-bit Linux: two timevals, then 14 longs (`ru_maxrss` in KiB first).
    #[repr(C)]
    #[derive(Default)]
    struct RUsage {
        utime: Timeval,
        stime: Timeval,
        maxrss: c_long,
        rest: [c_long; 13],
    }

    unsafe extern "C" {
        fn wait4(pid: c_int, status: *mut c_int, options: c_int, rusage: *mut RUsage) -> c_int;
    }

    fn duration(t: Timeval) -> Duration {
        Duration::from_secs(t.sec.max(0) as u64) + Duration::from_micros(t.usec.max(0) as u64)
    }

    pub fn wait(child: Child) -> io::Result<(ExitStatus, Option<Usage>)> {
        let pid = c_int::try_from(child.id()).map_err(io::Error::other)?;
        let mut status: c_int = 0;
        let mut usage = RUsage::default();
        loop {
            // SAFETY: `status` and `usage` are valid, exclusively borrowed out-parameters of the
            // layout wait4 writes; `pid` is our own unreaped child (std never waits on it,
            // since `child` is dropped without `wait`).
            let r = unsafe { wait4(pid, &mut status, 0, &mut usage) };
            if r == pid {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        drop(child);
        Ok((
            ExitStatus::from_raw(status),
            Some(Usage {
                user: duration(usage.utime),
                sys: duration(usage.stime),
                max_rss_kib: usage.maxrss.max(0) as u64,
            }),
        ))
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
mod imp {
    use std::io;
    use std::process::{Child, ExitStatus};

    use super::Usage;

    pub fn wait(mut child: Child) -> io::Result<(ExitStatus, Option<Usage>)> {
        Ok((child.wait()?, None))
    }
}
